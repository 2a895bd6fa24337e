package scheduler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodInfoRequests(t *testing.T) {
	const mi = 1 << 20
	cases := []struct {
		name                string
		pod                 *corev1.Pod
		wantCPU, wantMemory int64
		wantScoreCPU        int64
		wantScoreMemory     int64
	}{
		{name: "no requests", pod: makePod("p"), wantScoreCPU: 100, wantScoreMemory: 200 * mi},
		{name: "one container", pod: makePod("p", withRequests("cpu", "250m", "memory", "64Mi")),
			wantCPU: 250, wantMemory: 64 * mi, wantScoreCPU: 250, wantScoreMemory: 64 * mi},
		{name: "a stated zero stays zero when scoring", pod: makePod("p", withRequests("cpu", "0")),
			wantScoreMemory: 200 * mi},
		{name: "containers add up", pod: makePod("p", withRequests("cpu", "250m"), withContainer("cpu", "500m", "memory", "1Mi")),
			wantCPU: 750, wantMemory: mi, wantScoreCPU: 750, wantScoreMemory: 200*mi + mi},
		{name: "the largest init container wins over a smaller sum",
			pod:     makePod("p", withRequests("cpu", "250m", "memory", "10Mi"), withInit(false, "cpu", "1", "memory", "1Mi"), withInit(false, "cpu", "500m")),
			wantCPU: 1000, wantMemory: 10 * mi, wantScoreCPU: 1000, wantScoreMemory: 200 * mi},
		{name: "sidecars run with the app and beside later init containers",
			// Peak: the sidecar (100m) with the second init container
			// (1) = 1100m; app + sidecar = 600m.
			pod:     makePod("p", withRequests("cpu", "500m"), withInit(true, "cpu", "100m"), withInit(false, "cpu", "1")),
			wantCPU: 1100, wantScoreCPU: 1100, wantScoreMemory: 400 * mi},
		{name: "overhead adds", pod: makePod("p", withRequests("cpu", "100m"), func(p *corev1.Pod) { p.Spec.Overhead = resourceList("cpu", "50m", "memory", "5Mi") }),
			wantCPU: 150, wantMemory: 5 * mi, wantScoreCPU: 150, wantScoreMemory: 205 * mi},
		{name: "pod-level requests replace the containers'",
			pod: makePod("p", withRequests("cpu", "100m"), func(p *corev1.Pod) {
				p.Spec.Resources = &corev1.ResourceRequirements{Requests: resourceList("cpu", "2", "memory", "1Gi")}
			}),
			wantCPU: 2000, wantMemory: 1024 * mi, wantScoreCPU: 2000, wantScoreMemory: 1024 * mi},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodInfo(tc.pod)
			got := [4]int64{p.req.MilliCPU, p.req.Memory, p.scoreCPU, p.scoreMemory}
			want := [4]int64{tc.wantCPU, tc.wantMemory, tc.wantScoreCPU, tc.wantScoreMemory}
			if got != want {
				t.Fatalf("got cpu %d, memory %d, scoring cpu %d, memory %d; want %d, %d, %d, %d",
					got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3])
			}
		})
	}
}

func TestPodInfoPortsAndOwner(t *testing.T) {
	cases := []struct {
		name      string
		pod       *corev1.Pod
		wantPorts []hostPort
		wantOwner string
	}{
		{name: "nothing", pod: makePod("p")},
		{name: "defaults for address and protocol", pod: makePod("p", withHostPort("", "", 80)),
			wantPorts: []hostPort{{ip: "0.0.0.0", protoPort: protoPort{protocol: corev1.ProtocolTCP, port: 80}}}},
		{name: "container ports without a host port are not claims",
			pod: makePod("p", func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}} })},
		{name: "controller owner", pod: makePod("p", ownedBy("rs-1")), wantOwner: "rs-1"},
		{name: "an owner that is not the controller does not count",
			pod: makePod("p", ownedBy("rs-1"), func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodInfo(tc.pod)
			if !reflect.DeepEqual(p.ports, tc.wantPorts) || string(p.owner) != tc.wantOwner {
				t.Fatalf("got ports %+v owner %q, want %+v owner %q", p.ports, p.owner, tc.wantPorts, tc.wantOwner)
			}
		})
	}
}
