package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	rt "orch.dev/orch/node/runtime"
)

// podFailure is why the agent ends a pod for good, as the kubelet does
// for an active deadline or an eviction: the pod's containers stop (with
// grace), and its phase becomes Failed with this reason and message.
type podFailure struct {
	reason, message string
	grace           time.Duration
}

// usageCheckInterval is how often a pod's emptyDir usage is measured
// against its sizeLimit, as often as the kubelet's eviction manager looks.
const usageCheckInterval = 10 * time.Second

// failure says whether the pod must fail now. If not, it returns when to
// look again (0: nothing to wait for).
func (w *podWorker) failure(pod *corev1.Pod, start time.Time) (*podFailure, time.Duration) {
	w.mu.Lock()
	f := w.failed
	w.mu.Unlock()
	if f != nil {
		return f, 0 // until the Failed phase shows in the API
	}
	now := w.a.now()
	var wake time.Duration
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		left := start.Add(time.Duration(*d) * time.Second).Sub(now)
		if left <= 0 {
			return &podFailure{reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline",
				grace: podGrace(pod)}, 0
		}
		wake = left
	}
	limited := emptyDirLimits(pod)
	if len(limited) == 0 {
		return nil, wake
	}
	w.mu.Lock()
	due := !now.Before(w.nextUsageCheck)
	if due {
		w.nextUsageCheck = now.Add(w.a.usageInterval())
	}
	w.mu.Unlock()
	if due {
		for _, v := range limited {
			used, err := diskUsage(w.a.volumes.volumeDir(pod.UID, pluginEmptyDir, v.Name))
			if err != nil {
				w.a.log.Warn("measure emptyDir usage", "pod", pod.Namespace+"/"+pod.Name, "volume", v.Name, "err", err)
				continue
			}
			if limit := v.EmptyDir.SizeLimit; used > limit.Value() {
				// Evictions stop the containers at once, as the kubelet's
				// do for local storage.
				return &podFailure{reason: "Evicted",
					message: fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Name, limit.String())}, 0
			}
		}
	}
	return nil, minWake(wake, w.a.usageInterval())
}

func (a *Agent) usageInterval() time.Duration {
	if a.usageCheck > 0 {
		return a.usageCheck
	}
	return usageCheckInterval
}

// emptyDirLimits lists the pod's on-disk emptyDirs with a sizeLimit (a
// memory-backed one is a tmpfs of that size: the kernel enforces it).
func emptyDirLimits(pod *corev1.Pod) []corev1.Volume {
	var out []corev1.Volume
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumDefault && v.EmptyDir.SizeLimit != nil {
			out = append(out, v)
		}
	}
	return out
}

// diskUsage is the space the files under dir take, counted in allocated
// blocks as du counts them; a file linked twice counts once.
func diskUsage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			total += info.Size()
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// fail ends the pod: an event says why (once), its containers stop, and
// its status becomes Failed with the failure's reason. The pod object
// stays, as the kubelet leaves failed pods for their owners to see.
func (w *podWorker) fail(ctx context.Context, pod *corev1.Pod, cs []rt.Container, view podView, f *podFailure) {
	a := w.a
	w.mu.Lock()
	first := w.failed == nil
	w.failed = f
	w.mu.Unlock()
	if first {
		a.event(pod, corev1.EventTypeWarning, f.reason, "%s", f.message)
		a.log.Info("pod failed", "pod", pod.Namespace+"/"+pod.Name, "reason", f.reason, "message", f.message)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		if c.Labels[rt.LabelRole] != rt.RoleSandbox && c.State == rt.StateRunning {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.stop(ctx, c, f.grace)
			}()
		}
	}
	wg.Wait()
	for _, sb := range pick(cs, "", rt.RoleSandbox) {
		if sb.State == rt.StateRunning {
			a.stop(ctx, sb, 0)
		}
	}
	if now, err := w.engineContainers(ctx); err == nil {
		cs = now
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		view.init = append(view.init, attemptsView(c, pick(cs, c.Name, rt.RoleInit)))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		view.app = append(view.app, attemptsView(c, pick(cs, c.Name, rt.RoleApp)))
	}
	view.failure = f
	w.report(pod, view)
}
