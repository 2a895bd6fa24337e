//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but is the API orch serves and the DNS index reads.

package dns

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// NewIndexFromInformers returns an Index kept up to date by the Service,
// Endpoints and Pod informers of f. It registers its handlers on the shared
// factory and does not start it: the caller starts f afterwards. The index
// reports Synced once every handler has seen its informer's initial list.
func NewIndexFromInformers(f informers.SharedInformerFactory) (*Index, error) {
	x := NewIndex()
	core := f.Core().V1()
	svcReg, err := core.Services().Informer().AddEventHandler(handlerFuncs(
		func(s *corev1.Service) { x.UpsertService(s) }, x.DeleteService))
	if err != nil {
		return nil, fmt.Errorf("dns: watch services: %w", err)
	}
	epReg, err := core.Endpoints().Informer().AddEventHandler(handlerFuncs(
		func(e *corev1.Endpoints) { x.UpsertEndpoints(e) }, x.DeleteEndpoints))
	if err != nil {
		return nil, fmt.Errorf("dns: watch endpoints: %w", err)
	}
	podReg, err := core.Pods().Informer().AddEventHandler(handlerFuncs(
		func(p *corev1.Pod) { x.UpsertPod(p) }, x.DeletePod))
	if err != nil {
		return nil, fmt.Errorf("dns: watch pods: %w", err)
	}
	x.hasSynced = func() bool { return svcReg.HasSynced() && epReg.HasSynced() && podReg.HasSynced() }
	return x, nil
}

func handlerFuncs[T any](upsert func(T), del func(namespace, name string)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		DeleteFunc: func(obj any) {
			k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			if err != nil {
				return // not an object with a key: nothing indexed under it
			}
			ns, name, err := cache.SplitMetaNamespaceKey(k)
			if err != nil {
				return // a malformed key names nothing indexed
			}
			del(ns, name)
		},
	}
}
