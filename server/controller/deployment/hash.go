package deployment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/rand"
)

// TemplateHash is the pod-template-hash of a pod template: 10 characters
// of a DNS-safe alphabet, from the FNV-32a hash of the template's JSON form
// and the Deployment's collision count. A collision count that changes
// gives a different hash for the same template, which is how a name taken
// by a ReplicaSet the Deployment does not own is avoided.
func TemplateHash(tmpl *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	// A PodTemplateSpec is plain data (no channels, functions or cyclic
	// pointers), so encoding it cannot fail.
	b, _ := json.Marshal(tmpl)
	h.Write(b)
	if collisionCount != nil {
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		h.Write(buf[:])
	}
	return rand.SafeEncodeString(fmt.Sprintf("%010d", h.Sum32()))
}

// EqualIgnoreHash reports whether two pod templates are the same apart from
// the pod-template-hash label: whether a ReplicaSet runs a Deployment's
// current template.
func EqualIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a1, b1 := a.DeepCopy(), b.DeepCopy()
	delete(a1.Labels, PodTemplateHashLabel)
	delete(b1.Labels, PodTemplateHashLabel)
	return apiequality.Semantic.DeepEqual(a1, b1)
}

// withLabel returns a copy of m with key=value added.
func withLabel(m map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
}

// skipAnnotation says which annotations stay where they are instead of
// being copied between a Deployment and its ReplicaSets: the ones that
// describe one object's own state rather than the revision.
func skipAnnotation(key string) bool {
	switch key {
	case lastAppliedAnnotation, RevisionAnnotation, RevisionHistoryAnnotation,
		DesiredReplicasAnnotation, MaxReplicasAnnotation, rollbackToAnnotation:
		return true
	}
	return strings.HasPrefix(key, "orch.dev/available") || strings.HasPrefix(key, "orch.dev/auto-roll")
}
