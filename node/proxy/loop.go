//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is what the cluster publishes and the proxy reads.

package proxy

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// serviceWatch is what both proxies share: listers of Services and
// Endpoints, a kick on every change of either, and the loop that syncs
// once changes settle.
type serviceWatch struct {
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	kick      chan struct{}
}

// newServiceWatch registers the informers on the shared factory; the
// caller starts the factory.
func newServiceWatch(f informers.SharedInformerFactory) (*serviceWatch, error) {
	svcInf := f.Core().V1().Services()
	epInf := f.Core().V1().Endpoints()
	w := &serviceWatch{services: svcInf.Lister(), endpoints: epInf.Lister(), kick: make(chan struct{}, 1)}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(o, n any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{svcInf.Informer(), epInf.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, err
		}
		w.synced = append(w.synced, inf.HasSynced)
	}
	return w, nil
}

func (w *serviceWatch) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// loop syncs at once, then after every change (waiting minInterval for
// the changes that follow closely) and on every tick for which onTick
// asks for it, until ctx ends. A failed sync is logged with failMsg and
// tried again after 1 s, doubling up to 30 s.
func (w *serviceWatch) loop(ctx context.Context, log *slog.Logger, minInterval time.Duration, tick <-chan time.Time, onTick func() bool,
	sync func(context.Context) error, failMsg string) error {
	retry := time.Second
	w.poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if !onTick() {
				continue
			}
		case <-w.kick:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(minInterval):
			}
			select {
			case <-w.kick:
			default:
			}
		}
		if err := sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn(failMsg, "err", err, "in", retry)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
			retry = min(2*retry, 30*time.Second)
			w.poke()
			continue
		}
		retry = time.Second
	}
}
