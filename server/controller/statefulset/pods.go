package statefulset

import (
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"orch.dev/orch/server/controller"
)

// ordinalOf is the ordinal in pod's name when the name is one of set's
// (NAME-i, i a decimal number without leading zeros).
func ordinalOf(set *appsv1.StatefulSet, pod *corev1.Pod) (int, bool) {
	rest, ok := strings.CutPrefix(pod.Name, set.Name+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return n, true
}

func podName(set *appsv1.StatefulSet, ordinal int) string {
	return set.Name + "-" + strconv.Itoa(ordinal)
}

// revisionOf names the revision of a template: the set's name and the
// template's hash, as Kubernetes names ControllerRevisions.
func revisionOf(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec) string {
	return set.Name + "-" + controller.RevisionHash(template)
}

func revisionLabel(pod *corev1.Pod) string {
	return pod.Labels[appsv1.ControllerRevisionHashLabelKey]
}

// identityLabels are the labels that give a pod its place in the set.
func identityLabels(set *appsv1.StatefulSet, ordinal int) map[string]string {
	return map[string]string{
		appsv1.StatefulSetPodNameLabel: podName(set, ordinal),
		appsv1.PodIndexLabel:           strconv.Itoa(ordinal),
	}
}

// newPod is the pod with ordinal made from template at revision.
func newPod(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec, revision string, ordinal int) *corev1.Pod {
	pod := controller.PodFromTemplate(template, set, statefulSetKind)
	pod.GenerateName = ""
	pod.Name = podName(set, ordinal)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range identityLabels(set, ordinal) {
		pod.Labels[k] = v
	}
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	addClaimVolumes(set, pod)
	return pod
}

// addClaimVolumes gives the pod a persistentVolumeClaim volume for each of
// the set's volumeClaimTemplates, named after the template, as Kubernetes
// does; a template volume of the same name is replaced.
func addClaimVolumes(set *appsv1.StatefulSet, pod *corev1.Pod) {
	for _, claim := range set.Spec.VolumeClaimTemplates {
		v := corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(&claim, pod.Name)},
		}}
		replaced := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == claim.Name {
				pod.Spec.Volumes[i] = v
				replaced = true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, v)
		}
	}
}

// templateFromPod recovers the template a pod was made from: what newPod
// added (identity labels, host name, claim volumes) and what the scheduler
// set are taken away again.
func templateFromPod(set *appsv1.StatefulSet, pod *corev1.Pod) *corev1.PodTemplateSpec {
	t := &corev1.PodTemplateSpec{}
	t.Labels = map[string]string{}
	for k, v := range pod.Labels {
		switch k {
		case appsv1.StatefulSetPodNameLabel, appsv1.PodIndexLabel, appsv1.ControllerRevisionHashLabelKey:
		default:
			t.Labels[k] = v
		}
	}
	if len(pod.Annotations) > 0 {
		t.Annotations = map[string]string{}
		for k, v := range pod.Annotations {
			t.Annotations[k] = v
		}
	}
	t.Finalizers = append([]string(nil), pod.Finalizers...)
	pod.Spec.DeepCopyInto(&t.Spec)
	t.Spec.NodeName = ""
	t.Spec.Hostname = ""
	t.Spec.Subdomain = ""
	claims := map[string]bool{}
	for _, c := range set.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	var volumes []corev1.Volume
	for _, v := range t.Spec.Volumes {
		if !claims[v.Name] {
			volumes = append(volumes, v)
		}
	}
	t.Spec.Volumes = volumes
	return t
}

// state is what one sync knows of a StatefulSet and its pods.
type state struct {
	set      *appsv1.StatefulSet
	key      string
	replicas int
	// byOrdinal holds the pods with ordinals below replicas (nil where
	// there is none); condemned the ones above, highest ordinal first.
	byOrdinal []*corev1.Pod
	condemned []*corev1.Pod
	pods      []*corev1.Pod
	current   string // status.currentRevision, or the update revision
	update    string // the revision of the set's template
	now       time.Time
}

func newState(set *appsv1.StatefulSet, key string, pods []*corev1.Pod, now time.Time) *state {
	replicas := 1
	if set.Spec.Replicas != nil {
		replicas = max(int(*set.Spec.Replicas), 0)
	}
	s := &state{
		set:       set,
		key:       key,
		replicas:  replicas,
		byOrdinal: make([]*corev1.Pod, replicas),
		pods:      pods,
		update:    revisionOf(set, &set.Spec.Template),
		now:       now,
	}
	s.current = set.Status.CurrentRevision
	if s.current == "" {
		s.current = s.update
	}
	for _, p := range pods {
		i, ok := ordinalOf(set, p)
		switch {
		case !ok:
		case i < replicas:
			s.byOrdinal[i] = p
		default:
			s.condemned = append(s.condemned, p)
		}
	}
	sort.Slice(s.condemned, func(i, j int) bool {
		a, _ := ordinalOf(set, s.condemned[i])
		b, _ := ordinalOf(set, s.condemned[j])
		return a > b
	})
	return s
}

// partition is the lowest ordinal a rolling update replaces.
func (s *state) partition() int {
	ru := s.set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.Partition == nil {
		return 0
	}
	return max(int(*ru.Partition), 0)
}

func (s *state) rollingUpdate() bool {
	t := s.set.Spec.UpdateStrategy.Type
	return t == appsv1.RollingUpdateStatefulSetStrategyType || t == ""
}

// podFor is the pod to create for ordinal: of the current revision below
// the partition of a rolling update in progress, of the update revision
// otherwise.
func (s *state) podFor(ordinal int) *corev1.Pod {
	if s.rollingUpdate() && s.current != s.update && ordinal < s.partition() {
		if t := s.currentTemplate(); t != nil {
			return newPod(s.set, t, s.current, ordinal)
		}
	}
	return newPod(s.set, &s.set.Spec.Template, s.update, ordinal)
}

// currentTemplate recovers the template of the current revision from one
// of its pods, preferring one not being deleted; nil when none is left.
func (s *state) currentTemplate() *corev1.PodTemplateSpec {
	var found *corev1.Pod
	for _, p := range s.pods {
		if revisionLabel(p) != s.current {
			continue
		}
		if found == nil || (found.DeletionTimestamp != nil && p.DeletionTimestamp == nil) {
			found = p
		}
	}
	if found == nil {
		return nil
	}
	return templateFromPod(s.set, found)
}

func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

func isRunningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && controller.IsPodReady(p)
}

// healthy is a pod the ordered policies may move past: Running, Ready and
// available, and not being deleted.
func (s *state) healthy(p *corev1.Pod) bool {
	return p != nil && p.DeletionTimestamp == nil && isRunningAndReady(p) &&
		controller.IsPodAvailable(p, s.set.Spec.MinReadySeconds, s.now)
}

// availableIn is how long until a Running and Ready pod becomes available
// (0 when it is, or never will be without another change).
func (s *state) availableIn(p *corev1.Pod) time.Duration {
	if !isRunningAndReady(p) || controller.IsPodAvailable(p, s.set.Spec.MinReadySeconds, s.now) {
		return 0
	}
	c := controller.PodReadyCondition(p)
	at := c.LastTransitionTime.Add(time.Duration(s.set.Spec.MinReadySeconds) * time.Second)
	return max(at.Sub(s.now), time.Second)
}
