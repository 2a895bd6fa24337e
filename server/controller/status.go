package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StatusClient is what UpdateStatus needs of a typed client (a
// DaemonSetInterface, say).
type StatusClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// UpdateStatus writes the status setStatus puts on obj, a copy of what the
// loop's cache shows. A conflict means the cache lags behind the loop's
// own last write: setStatus is applied to one fresh read, which is enough
// to write over it. An object deleted and made again meanwhile is left
// alone, as its own sync follows.
func UpdateStatus[T metav1.Object](ctx context.Context, client StatusClient[T], obj T, setStatus func(T)) error {
	next := obj
	for attempt := 0; ; attempt++ {
		setStatus(next)
		_, err := client.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("update status: %w", err)
		}
		if next, err = client.Get(ctx, obj.GetName(), metav1.GetOptions{}); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		if next.GetUID() != obj.GetUID() {
			return nil
		}
	}
}
