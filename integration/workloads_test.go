package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"orch.dev/orch/internal/logging"
	"orch.dev/orch/internal/testutil"
	"orch.dev/orch/server/controller/cronjob"
)

// deployment is a Deployment of the hello image with label app=name.
func deployment(name string, replicas int32) *appsv1.Deployment {
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}},
			},
		},
	}
}

// podsOf lists the pods with label app=name that are not being deleted.
func (nc *nodeCluster) podsOf(name string) ([]corev1.Pod, error) {
	l, err := nc.cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitRunning waits until exactly n pods of app=name exist and all run
// on Docker; the check also returns what the pods run, for the caller.
func (nc *nodeCluster) waitRunning(t *testing.T, name string, n int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testutil.Eventually(t, timeout, func() string {
		var err error
		if pods, err = nc.podsOf(name); err != nil {
			return err.Error()
		}
		running := 0
		var others []string
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
				continue
			}
			// What a pod that is not running waits for, for the failure.
			others = append(others, fmt.Sprintf("%s on %q: %s %s", p.Name, p.Spec.NodeName, p.Status.Phase, containerStates(&p)))
		}
		if len(pods) != n || running != n {
			return fmt.Sprintf("%d pods of %s, %d Running; want %d Running; others: %s", len(pods), name, running, n, strings.Join(others, "; "))
		}
		return ""
	})
	return pods
}

func TestWorkloadsOnDocker(t *testing.T) {
	nc := startNodes(t, 3)
	ctx := context.Background()
	deploys := nc.cs.AppsV1().Deployments("default")

	t.Run("a deployment scales 5, 10, 2", func(t *testing.T) {
		if _, err := deploys.Create(ctx, deployment("scale", 5), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		nc.waitRunning(t, "scale", 5, 90*time.Second)
		for _, n := range []int{10, 2} {
			out, code := ctlOut(t, nc.kc, "", 30*time.Second, "scale", "deployment/scale", "--replicas", fmt.Sprint(n))
			if code != 0 {
				t.Fatalf("scale to %d: exit %d: %s", n, code, out)
			}
			nc.waitRunning(t, "scale", n, 90*time.Second)
		}
	})

	t.Run("a pod whose labels change is released and replaced", func(t *testing.T) {
		pods := nc.waitRunning(t, "scale", 2, 30*time.Second)
		p := pods[0]
		out, code := ctlOut(t, nc.kc, "", 30*time.Second, "label", "pod", p.Name, "app=debug", "--overwrite")
		if code != 0 {
			t.Fatalf("label: exit %d: %s", code, out)
		}
		nc.waitRunning(t, "scale", 2, 60*time.Second)
		got, err := nc.cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ref := metav1.GetControllerOf(got); ref != nil {
			t.Errorf("the relabelled pod is still controlled by %s %s", ref.Kind, ref.Name)
		}
		if got.Status.Phase != corev1.PodRunning {
			t.Errorf("the released pod is %s; it should keep running", got.Status.Phase)
		}
		if err := nc.cs.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("rolling update keeps replicas - maxUnavailable ready", func(t *testing.T) {
		d := deployment("roll", 4)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(1)), MaxSurge: ptr.To(intstr.FromInt32(1))}}
		if _, err := deploys.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		nc.waitRunning(t, "roll", 4, 90*time.Second)
		waitRolledOut(t, nc, "roll")

		// A watcher samples the ready pods at every change.
		minReady := sampleReady(t, nc, "roll")
		out, code := ctlOut(t, nc.kc, "", 30*time.Second, "set", "image", "deployment/roll", "app="+testutil.BusyboxImage)
		if code != 0 {
			t.Fatalf("set image: exit %d: %s", code, out)
		}
		// busybox's default command (sh) exits at once; give it one that stays.
		patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","command":["sleep","3600"]}]}}}}`
		if _, err := deploys.Patch(ctx, "roll", "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		out, code = ctlOut(t, nc.kc, "", 3*time.Minute, "rollout", "status", "deployment/roll", "--timeout", "150s")
		if code != 0 {
			t.Fatalf("rollout status: exit %d: %s", code, out)
		}
		if low := minReady(); low < 3 {
			t.Errorf("ready pods dropped to %d during the rollout; maxUnavailable 1 of 4 allows 3", low)
		}
		for _, p := range nc.waitRunning(t, "roll", 4, 60*time.Second) {
			if p.Spec.Containers[0].Image != testutil.BusyboxImage {
				t.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
			}
		}
	})

	t.Run("a crashing version is rolled back automatically", func(t *testing.T) {
		d := deployment("crash", 2)
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](15)
		if _, err := deploys.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		nc.waitRunning(t, "crash", 2, 90*time.Second)
		waitRolledOut(t, nc, "crash")
		patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"` + testutil.BusyboxImage + `","command":["sh","-c","exit 3"]}]}}}}`
		if _, err := deploys.Patch(ctx, "crash", "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		out, code := ctlOut(t, nc.kc, "", 3*time.Minute, "rollout", "status", "deployment/crash", "--timeout", "150s")
		if code == 0 {
			t.Fatalf("rollout status of a crashing version exited 0: %s", out)
		}
		if !strings.Contains(out, "rolled back") && !strings.Contains(out, "progress deadline") {
			t.Errorf("rollout status does not say what happened: %s", out)
		}
		testutil.Eventually(t, 90*time.Second, func() string {
			cur, err := deploys.Get(ctx, "crash", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if img := cur.Spec.Template.Spec.Containers[0].Image; img != testutil.HelloImage {
				return "the deployment still runs " + img
			}
			return ""
		})
		nc.waitRunning(t, "crash", 2, 90*time.Second)
		testutil.Eventually(t, 30*time.Second, func() string {
			ev, err := nc.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=crash,involvedObject.kind=Deployment"})
			if err != nil {
				return err.Error()
			}
			for _, e := range ev.Items {
				if strings.Contains(strings.ToLower(e.Reason), "rollback") {
					return ""
				}
			}
			return "no rollback event on the deployment"
		})
	})

	t.Run("rollout undo --to-revision 1", func(t *testing.T) {
		d := deployment("undo", 2)
		if _, err := deploys.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRolledOut(t, nc, "undo")
		for i, greeting := range []string{"two", "three"} {
			patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"GREETING","value":%q}]}]}}}}`, greeting)
			if _, err := deploys.Patch(ctx, "undo", "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			waitRolledOut(t, nc, "undo")
			out, _ := ctlOut(t, nc.kc, "", 30*time.Second, "rollout", "history", "deployment/undo")
			if !strings.Contains(out, fmt.Sprint(i+2)) {
				t.Errorf("rollout history lacks revision %d:\n%s", i+2, out)
			}
		}
		out, code := ctlOut(t, nc.kc, "", 30*time.Second, "rollout", "undo", "deployment/undo", "--to-revision", "1")
		if code != 0 {
			t.Fatalf("rollout undo: exit %d: %s", code, out)
		}
		waitRolledOut(t, nc, "undo")
		testutil.Eventually(t, 60*time.Second, func() string {
			pods, err := nc.podsOf("undo")
			if err != nil {
				return err.Error()
			}
			for _, p := range pods {
				if len(p.Spec.Containers[0].Env) != 0 || p.Status.Phase != corev1.PodRunning {
					return fmt.Sprintf("pod %s: env %v, %s", p.Name, p.Spec.Containers[0].Env, p.Status.Phase)
				}
			}
			if len(pods) != 2 {
				return fmt.Sprintf("%d pods", len(pods))
			}
			return ""
		})
	})

	t.Run("deleting a deployment removes its replica sets and pods", func(t *testing.T) {
		if err := deploys.Delete(ctx, "undo", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 60*time.Second, func() string {
			rs, err := nc.cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=undo"})
			if err != nil {
				return err.Error()
			}
			pods, err := nc.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=undo"})
			if err != nil {
				return err.Error()
			}
			if len(rs.Items)+len(pods.Items) > 0 {
				return fmt.Sprintf("%d replica sets and %d pods left", len(rs.Items), len(pods.Items))
			}
			return ""
		})
	})

	t.Run("a daemon set runs on every node, cordoned too", func(t *testing.T) {
		cordoned := nc.agents[2].name
		if out, code := ctlOut(t, nc.kc, "", 30*time.Second, "cordon", cordoned); code != 0 {
			t.Fatalf("cordon: %s", out)
		}
		defer ctlOut(t, nc.kc, "", 30*time.Second, "uncordon", cordoned)
		l := map[string]string{"app": "agentd"}
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agentd"}, Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}}}}}
		if _, err := nc.cs.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pods := nc.waitRunning(t, "agentd", 3, 90*time.Second)
		nodes := map[string]bool{}
		for _, p := range pods {
			nodes[p.Spec.NodeName] = true
		}
		for _, a := range nc.agents {
			if !nodes[a.name] {
				t.Errorf("no daemon pod on %s (pods on %v)", a.name, nodes)
			}
		}
		if err := nc.cs.AppsV1().DaemonSets("default").Delete(ctx, "agentd", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a stateful set starts in order and scales down in reverse", func(t *testing.T) {
		l := map[string]string{"app": "db"}
		ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](3), ServiceName: "db", Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{{Name: "app", Image: testutil.HelloImage}}}}}}
		order := recordPodOrder(t, nc, "app=db")
		if _, err := nc.cs.AppsV1().StatefulSets("default").Create(ctx, ss, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pods := nc.waitRunning(t, "db", 3, 2*time.Minute)
		for _, p := range pods {
			if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "db" {
				t.Errorf("pod %s: hostname %q subdomain %q", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
			}
		}
		if out, code := ctlOut(t, nc.kc, "", 30*time.Second, "scale", "statefulset/db", "--replicas", "0"); code != 0 {
			t.Fatalf("scale: %s", out)
		}
		testutil.Eventually(t, 2*time.Minute, func() string {
			pods, err := nc.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
			if err != nil {
				return err.Error()
			}
			if len(pods.Items) > 0 {
				return fmt.Sprintf("%d pods of the stateful set left", len(pods.Items))
			}
			return ""
		})
		created, deleted := order()
		if want := []string{"db-0", "db-1", "db-2"}; strings.Join(created, ",") != strings.Join(want, ",") {
			t.Errorf("created in order %v, want %v", created, want)
		}
		if want := []string{"db-2", "db-1", "db-0"}; strings.Join(deleted, ",") != strings.Join(want, ",") {
			t.Errorf("deleted in order %v, want %v", deleted, want)
		}
	})

	t.Run("a job with completions 5 and parallelism 2 succeeds", func(t *testing.T) {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch"}, Spec: batchv1.JobSpec{
			Completions: ptr.To[int32](5), Parallelism: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "work", Image: testutil.BusyboxImage, Command: []string{"sh", "-c", "sleep 1"}}}}}}}
		if _, err := nc.cs.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		maxActive := 0
		testutil.Eventually(t, 3*time.Minute, func() string {
			j, err := nc.cs.BatchV1().Jobs("default").Get(ctx, "batch", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			maxActive = max(maxActive, int(j.Status.Active))
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					if j.Status.Succeeded != 5 {
						return fmt.Sprintf("complete with %d succeeded", j.Status.Succeeded)
					}
					return ""
				}
			}
			return fmt.Sprintf("job: %d active, %d succeeded, %d failed", j.Status.Active, j.Status.Succeeded, j.Status.Failed)
		})
		if maxActive > 2 {
			t.Errorf("%d pods active at once; parallelism is 2", maxActive)
		}
	})
}

// TestCronJobWithInjectedClock runs a CronJob controller in the test
// process with a fake clock against a real cluster, whose own controllers
// (on the real clock) run the Job it creates on Docker. The schedule
// (yearly, on 1 January) never comes due on the real clock during the test.
func TestCronJobWithInjectedClock(t *testing.T) {
	nc := startNodes(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "newyear"}, Spec: batchv1.CronJobSpec{
		Schedule: "0 0 1 1 *", TimeZone: ptr.To("UTC"),
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "greet", Image: testutil.BusyboxImage, Command: []string{"echo", "happy new year"}}}}}}}}}
	created, err := nc.cs.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(created.CreationTimestamp.Time)
	f := informers.NewSharedInformerFactory(nc.cs, 0)
	c := cronjob.New(cronjob.Deps{Client: nc.cs, Informers: f, Clock: clk, Logger: logging.Discard})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done; f.Shutdown() }()

	next := time.Date(created.CreationTimestamp.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	clk.SetTime(next.Add(5 * time.Second))
	wantName := fmt.Sprintf("newyear-%d", next.Unix()/60)
	testutil.Eventually(t, 2*time.Minute, func() string {
		j, err := nc.cs.BatchV1().Jobs("default").Get(ctx, wantName, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return ""
			}
		}
		return fmt.Sprintf("job %s: %d active, %d succeeded, %d failed", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed)
	})
	testutil.Eventually(t, 30*time.Second, func() string {
		got, err := nc.cs.BatchV1().CronJobs("default").Get(ctx, "newyear", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(next) {
			return fmt.Sprintf("lastScheduleTime %v, want %v", got.Status.LastScheduleTime, next)
		}
		if got.Status.LastSuccessfulTime == nil {
			return "no lastSuccessfulTime yet"
		}
		return ""
	})
	l, err := nc.cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 {
		t.Errorf("%d jobs, want the one for %v", len(l.Items), next)
	}
}

// waitRolledOut waits until the deployment's rollout is complete: every
// replica updated, available, and no old ones.
func waitRolledOut(t *testing.T, nc *nodeCluster, name string) {
	t.Helper()
	testutil.Eventually(t, 2*time.Minute, func() string {
		d, err := nc.cs.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		want := *d.Spec.Replicas
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
			return fmt.Sprintf("deployment %s: generation %d observed %d, %d updated, %d available, %d total, want %d",
				name, d.Generation, st.ObservedGeneration, st.UpdatedReplicas, st.AvailableReplicas, st.Replicas, want)
		}
		return ""
	})
}

// sampleReady watches the pods of app=name and returns a function giving
// the fewest Ready pods (not being deleted) seen at any event since.
func sampleReady(t *testing.T, nc *nodeCluster, name string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := nc.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	w, err := nc.cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	count := func() int {
		n := 0
		for _, r := range ready {
			if r {
				n++
			}
		}
		return n
	}
	for _, p := range l.Items {
		ready[p.Name] = p.DeletionTimestamp == nil && podReady(&p)
	}
	var mu sync.Mutex
	low := count()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			ready[p.Name] = ev.Type != watch.Deleted && p.DeletionTimestamp == nil && podReady(p)
			low = min(low, count())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return low
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// recordPodOrder watches pods matching selector and returns a function
// giving the names in the order they were created and in the order they
// were deleted.
func recordPodOrder(t *testing.T, nc *nodeCluster, selector string) func() (created, deleted []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := nc.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	w, err := nc.cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var created, deleted []string
	seenDelete := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			switch {
			case ev.Type == watch.Added:
				created = append(created, p.Name)
			case (ev.Type == watch.Deleted || p.DeletionTimestamp != nil) && !seenDelete[p.Name]:
				seenDelete[p.Name] = true
				deleted = append(deleted, p.Name)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() ([]string, []string) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), created...), append([]string(nil), deleted...)
	}
}
