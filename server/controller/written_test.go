package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWrittenVersions(t *testing.T) {
	obj := func(rv string) *corev1.Pod { return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}} }
	w := NewWrittenVersions()
	cases := []struct {
		name   string
		record string
		check  string
		stale  bool
	}{
		{name: "nothing written", check: "5"},
		{name: "older than written", record: "10", check: "9", stale: true},
		{name: "the one written", check: "10"},
		{name: "newer", check: "11"},
		{name: "an older write does not lower the mark", record: "3", check: "9", stale: true},
		{name: "not a number", check: "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.record != "" {
				w.Record("ns/a", obj(tc.record))
			}
			if got := w.Stale("ns/a", obj(tc.check)); got != tc.stale {
				t.Errorf("got stale %v for %s, want %v", got, tc.check, tc.stale)
			}
		})
	}
	w.Forget("ns/a")
	if w.Stale("ns/a", obj("1")) {
		t.Errorf("got stale after Forget, want not")
	}
}
