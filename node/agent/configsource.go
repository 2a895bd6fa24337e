package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// configLookup finds the ConfigMaps and Secrets pods refer to. Absent
// objects are reported with errors for which apierrors.IsNotFound holds.
type configLookup interface {
	configMap(ns, name string) (*corev1.ConfigMap, error)
	secret(ns, name string) (*corev1.Secret, error)
}

// informerLookup reads ConfigMaps and Secrets from the agent's informer
// caches.
type informerLookup struct {
	cms  func(ns, name string) (*corev1.ConfigMap, error)
	secs func(ns, name string) (*corev1.Secret, error)
}

func (l informerLookup) configMap(ns, name string) (*corev1.ConfigMap, error) { return l.cms(ns, name) }
func (l informerLookup) secret(ns, name string) (*corev1.Secret, error)       { return l.secs(ns, name) }

// errConfigMapNotFound and errSecretNotFound are the messages Kubernetes
// gives for a missing object; they name the object, never its content.
func errConfigMapNotFound(name string) error {
	return containerConfigError(fmt.Sprintf("configmap %q not found", name))
}

func errSecretNotFound(name string) error {
	return containerConfigError(fmt.Sprintf("secret %q not found", name))
}

// containerConfigError is a container configuration error whose message is
// shown as it is (reason CreateContainerConfigError).
type containerConfigError string

func (e containerConfigError) Error() string        { return string(e) }
func (e containerConfigError) Is(target error) bool { return target == errContainerConfig }

// startConfigSource watches the ConfigMaps and Secrets of the cluster, so
// pods read them from a cache, and a change kicks the workers of the pods
// that use the object: their env (at the next container start) and
// volumes (at once) follow it. It returns once the caches are filled, so
// no pod sees an existing object as missing.
func (a *Agent) startConfigSource(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	cms := factory.Core().V1().ConfigMaps()
	secs := factory.Core().V1().Secrets()
	handler := func(kind string) cache.ResourceEventHandler {
		changed := func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				a.configChanged(kind, o.Namespace, o.Name)
			case *corev1.Secret:
				a.configChanged(kind, o.Namespace, o.Name)
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: changed, UpdateFunc: func(_, obj any) { changed(obj) }, DeleteFunc: changed}
	}
	cmReg, err := cms.Informer().AddEventHandler(handler("configmap"))
	if err != nil {
		return err
	}
	secReg, err := secs.Informer().AddEventHandler(handler("secret"))
	if err != nil {
		return err
	}
	cmLister, secLister := cms.Lister(), secs.Lister()
	a.volumes.mu.Lock()
	a.volumes.configs = informerLookup{
		cms:  func(ns, name string) (*corev1.ConfigMap, error) { return cmLister.ConfigMaps(ns).Get(name) },
		secs: func(ns, name string) (*corev1.Secret, error) { return secLister.Secrets(ns).Get(name) },
	}
	a.volumes.mu.Unlock()
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), cmReg.HasSynced, secReg.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// lookups is the agent's ConfigMap and Secret lookup; before the caches
// run every object is missing.
func (a *Agent) lookups() configLookup {
	a.volumes.mu.Lock()
	defer a.volumes.mu.Unlock()
	if a.volumes.configs == nil {
		return noConfigs{}
	}
	return a.volumes.configs
}

type noConfigs struct{}

func (noConfigs) configMap(_, name string) (*corev1.ConfigMap, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
}

func (noConfigs) secret(_, name string) (*corev1.Secret, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

// configChanged kicks the workers of the pods that refer to a ConfigMap
// or Secret.
func (a *Agent) configChanged(kind, ns, name string) {
	a.mu.Lock()
	var kick []*podWorker
	for _, w := range a.workers {
		if p := w.currentPod(); p != nil && p.Namespace == ns && podRefers(p, kind, name) {
			kick = append(kick, w)
		}
	}
	a.mu.Unlock()
	for _, w := range kick {
		w.poke()
	}
}

// podRefers reports whether the pod uses the ConfigMap or Secret (kind
// "configmap" or "secret") in env, envFrom or volumes.
func podRefers(pod *corev1.Pod, kind, name string) bool {
	found := false
	visitContainers := func(cs []corev1.Container) {
		for i := range cs {
			c := &cs[i]
			for _, e := range c.EnvFrom {
				if kind == "configmap" && e.ConfigMapRef != nil && e.ConfigMapRef.Name == name ||
					kind == "secret" && e.SecretRef != nil && e.SecretRef.Name == name {
					found = true
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if kind == "configmap" && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == name ||
					kind == "secret" && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
					found = true
				}
			}
		}
	}
	visitContainers(pod.Spec.InitContainers)
	visitContainers(pod.Spec.Containers)
	for _, v := range pod.Spec.Volumes {
		switch {
		case kind == "configmap" && v.ConfigMap != nil && v.ConfigMap.Name == name,
			kind == "secret" && v.Secret != nil && v.Secret.SecretName == name:
			found = true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if kind == "configmap" && s.ConfigMap != nil && s.ConfigMap.Name == name ||
					kind == "secret" && s.Secret != nil && s.Secret.Name == name {
					found = true
				}
			}
		}
	}
	return found
}
