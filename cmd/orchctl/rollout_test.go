package main

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"orch.dev/orch/server/api/apitest"
	"orch.dev/orch/server/controller/deployment"
)

func TestRolloutStatus(t *testing.T) {
	t.Run("follows a rollout to its end", func(t *testing.T) {
		env := startWorkloads(t)
		createDeployment(t, env, newWebDeployment(3, "orch/hello:v1"))
		r := mustSucceed(t, env, "", "rollout", "status", "deployment/web", "--timeout", "20s")
		out := lines(r.stdout)
		if len(out) == 0 || out[len(out)-1] != `deployment "web" successfully rolled out` {
			t.Fatalf("got stdout %q, want it to end with the rollout done", r.stdout)
		}
		for _, l := range out[:len(out)-1] {
			if !strings.HasPrefix(l, "Waiting for deployment") {
				t.Errorf("got line %q, want only progress lines before the end", l)
			}
		}
	})

	t.Run("an automatic rollback fails it", func(t *testing.T) {
		env := startWorkloads(t)
		createDeployment(t, env, newWebDeployment(3, "orch/hello:v1"))
		waitRolledOut(t, env, "orch/hello:v1")
		updateDeployment(t, env, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "orch/broken:v2"
			d.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
		})
		r := orchctl(t, env, "", "rollout", "status", "deploy", "web", "--timeout", "20s")
		want := `error: deployment "web" exceeded its progress deadline; rolled back to revision 1 (progress deadline 2s exceeded: 0 of 3 new pods available)`
		if r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Fatalf("got %s\nwant exit 1 and %q", r, want)
		}
		waitRolledOut(t, env, "orch/hello:v1")
	})

	t.Run("a passed deadline without rollback fails it", func(t *testing.T) {
		env := startWorkloads(t)
		d := newWebDeployment(2, "orch/hello:v1")
		d.Annotations = map[string]string{deployment.AutoRollbackAnnotation: "false"}
		createDeployment(t, env, d)
		waitRolledOut(t, env, "orch/hello:v1")
		updateDeployment(t, env, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "orch/broken:v2"
			d.Spec.ProgressDeadlineSeconds = ptr.To[int32](1)
		})
		r := orchctl(t, env, "", "rollout", "status", "deployment/web", "--timeout", "20s")
		want := `error: deployment "web" exceeded its progress deadline`
		if r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Fatalf("got %s\nwant exit 1 and %q", r, want)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		env := startWorkloads(t)
		createDeployment(t, env, newWebDeployment(1, "orch/broken:v1"))
		r := orchctl(t, env, "", "rollout", "status", "deployment/web", "--timeout", "500ms")
		want := "error: timed out after 500ms waiting for the rollout of deployment.apps/web to finish"
		if r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Fatalf("got %s\nwant exit 1 and %q", r, want)
		}
		if !strings.Contains(r.stdout, `Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available...`) {
			t.Errorf("got stdout %q, want the progress line of the stuck rollout", r.stdout)
		}
	})

	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "once, without watching", args: []string{"rollout", "status", "deployment/web", "-w=false"},
			wantStdout: `Waiting for deployment spec update to be observed...`},
		{name: "a missing deployment", args: []string{"rollout", "status", "deployment/nope"}, wantCode: 1,
			wantStderr: `error: deployments.apps "nope" not found`},
		{name: "a kind without rollouts", args: []string{"rollout", "status", "cm/web"}, wantCode: 1,
			wantStderr: "error: configmap/web: rollout status works on deployments, daemon sets and stateful sets"},
		{name: "a kind without a name", args: []string{"rollout", "status", "deployment"}, wantCode: 1,
			wantStderr: "error: say which deployments: deployment NAME or deployment/NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := apitestWithDeployment(t)
			r := orchctl(t, env, "", tc.args...)
			if r.code != tc.wantCode || strings.TrimSpace(r.stdout) != tc.wantStdout || strings.TrimSpace(r.stderr) != tc.wantStderr {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr %q", r, tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}

// apitestWithDeployment is a server without controllers holding Deployment
// web, which nothing syncs.
func apitestWithDeployment(t *testing.T) *apitest.Env {
	t.Helper()
	env := apitest.Start(t)
	createDeployment(t, env, newWebDeployment(2, "orch/hello:v1"))
	return env
}

func TestRolloutPauseResumeRestart(t *testing.T) {
	env := apitestWithDeployment(t)
	ctx := context.Background()
	get := func() *appsv1.Deployment {
		d, err := env.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		check      func(*appsv1.Deployment) bool
	}{
		{name: "pause", args: []string{"rollout", "pause", "deployment/web"}, wantStdout: "deployment.apps/web paused",
			check: func(d *appsv1.Deployment) bool { return d.Spec.Paused }},
		{name: "pause again", args: []string{"rollout", "pause", "deployment/web"}, wantCode: 1,
			wantStderr: `error: deployment.apps/web: deployment "web" is already paused`},
		{name: "restart while paused", args: []string{"rollout", "restart", "deployment/web"}, wantCode: 1,
			wantStderr: `error: deployment.apps/web: cannot restart paused deployment "web" (run 'orchctl rollout resume deployment.apps/web' first)`},
		{name: "undo while paused", args: []string{"rollout", "undo", "deployment/web"}, wantCode: 1,
			wantStderr: `error: cannot roll back paused deployment "web"; resume it first with 'orchctl rollout resume deployment.apps/web'`},
		{name: "resume", args: []string{"rollout", "resume", "deploy", "web"}, wantStdout: "deployment.apps/web resumed",
			check: func(d *appsv1.Deployment) bool { return !d.Spec.Paused }},
		{name: "resume again", args: []string{"rollout", "resume", "deployment/web"}, wantCode: 1,
			wantStderr: `error: deployment.apps/web: deployment "web" is not paused`},
		{name: "restart", args: []string{"rollout", "restart", "deployment/web"}, wantStdout: "deployment.apps/web restarted",
			check: func(d *appsv1.Deployment) bool {
				_, err := time.Parse(time.RFC3339, d.Spec.Template.Annotations[restartedAtNote])
				return err == nil
			}},
		{name: "pause a replica set", args: []string{"rollout", "pause", "rs/web"}, wantCode: 1,
			wantStderr: "error: replicaset.apps/web: only deployments can be paused"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := orchctl(t, env, "", s.args...)
			if r.code != s.wantCode || strings.TrimSpace(r.stdout) != s.wantStdout || strings.TrimSpace(r.stderr) != s.wantStderr {
				t.Fatalf("got %s\nwant exit %d, stdout %q, stderr %q", r, s.wantCode, s.wantStdout, s.wantStderr)
			}
			if s.check != nil && !s.check(get()) {
				t.Fatalf("the deployment after %v: %+v", s.args, get().Spec)
			}
		})
	}
}

func TestRolloutHistoryAndUndo(t *testing.T) {
	env := startWorkloads(t)
	d := newWebDeployment(2, "orch/hello:v1")
	d.Annotations = map[string]string{deployment.ChangeCauseAnnotation: "first release"}
	createDeployment(t, env, d)
	waitRolledOut(t, env, "orch/hello:v1")
	updateDeployment(t, env, func(d *appsv1.Deployment) {
		d.Annotations[deployment.ChangeCauseAnnotation] = "upgrade to v2"
		d.Spec.Template.Spec.Containers[0].Image = "orch/hello:v2"
	})
	waitRolledOut(t, env, "orch/hello:v2")

	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
		wantImage  string
	}{
		{name: "history", args: []string{"rollout", "history", "deployment/web"},
			wantStdout: []string{"deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         first release", "2         upgrade to v2"}},
		{name: "one revision", args: []string{"rollout", "history", "deployment/web", "--revision", "1"},
			wantStdout: []string{"deployment.apps/web with revision #1", "Pod Template:", "  Labels:       app=web", "*pod-template-hash=",
				"  Annotations:  <none>", "  Containers:", "    app:", "      Image:  orch/hello:v1", "      Ports:  <none>"}},
		{name: "a missing revision", args: []string{"rollout", "history", "deployment/web", "--revision", "9"}, wantCode: 1,
			wantStderr: `error: deployment "web" has no revision 9 (revisions: 1, 2)`},
		{name: "undo to a missing revision", args: []string{"rollout", "undo", "deployment/web", "--to-revision", "7"}, wantCode: 1,
			wantStderr: `error: deployment "web" has no revision 7 (revisions: 1, 2)`},
		{name: "undo", args: []string{"rollout", "undo", "deployment/web"},
			wantStdout: []string{"deployment.apps/web rolled back to revision 1"}, wantImage: "orch/hello:v1"},
		{name: "history after undo", args: []string{"rollout", "history", "deploy/web"},
			wantStdout: []string{"deployment.apps/web", "REVISION  CHANGE-CAUSE", "2         upgrade to v2", "3         first release"}},
		{name: "undo to the current revision", args: []string{"rollout", "undo", "deployment/web", "--to-revision", "3"},
			wantStdout: []string{"deployment.apps/web skipped rollback (current template already matches revision 3)"}},
		{name: "undo to a revision", args: []string{"rollout", "undo", "deployment/web", "--to-revision", "2"},
			wantStdout: []string{"deployment.apps/web rolled back to revision 2"}, wantImage: "orch/hello:v2"},
		{name: "history of a daemon set", args: []string{"rollout", "history", "ds/web"}, wantCode: 1,
			wantStderr: "error: daemonset.apps/web: rollout history works on deployments only: they keep their revisions as replica sets"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := orchctl(t, env, "", s.args...)
			if r.code != s.wantCode || strings.TrimSpace(r.stderr) != s.wantStderr {
				t.Fatalf("got %s\nwant exit %d and stderr %q", r, s.wantCode, s.wantStderr)
			}
			got := lines(r.stdout)
			if len(got) != len(s.wantStdout) {
				t.Fatalf("got stdout lines %q, want %q", got, s.wantStdout)
			}
			for i, w := range s.wantStdout {
				if ok := got[i] == w || (strings.HasPrefix(w, "*") && strings.Contains(got[i], w[1:])); !ok {
					t.Fatalf("line %d: got %q, want %q\nwhole stdout:\n%s", i+1, got[i], w, r.stdout)
				}
			}
			if s.wantImage != "" {
				waitRolledOut(t, env, s.wantImage)
			}
		})
	}
	cur, err := env.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cause := cur.Annotations[deployment.ChangeCauseAnnotation]; cause != "upgrade to v2" {
		t.Errorf("got change-cause %q after undoing to revision 2, want that revision's %q", cause, "upgrade to v2")
	}
	if _, ok := cur.Spec.Template.Labels[deployment.PodTemplateHashLabel]; ok {
		t.Errorf("got template labels %v, want no %s", cur.Spec.Template.Labels, deployment.PodTemplateHashLabel)
	}
}

func TestRolloutViewers(t *testing.T) {
	ds := func(gen, observed int64, st appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		st.ObservedGeneration = observed
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: gen},
			Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}}, Status: st}
	}
	sts := func(replicas, partition int32, st appsv1.StatefulSetStatus) *appsv1.StatefulSet {
		st.ObservedGeneration = 1
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas), UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(partition)}}},
			Status: st}
	}
	onDelete := ds(1, 1, appsv1.DaemonSetStatus{})
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	cases := []struct {
		name     string
		viewer   rolloutViewer
		obj      runtime.Object
		wantMsg  string
		wantDone bool
		wantErr  string
	}{
		{name: "daemon set not observed", viewer: daemonSetViewer{}, obj: ds(2, 1, appsv1.DaemonSetStatus{}),
			wantMsg: "Waiting for daemon set spec update to be observed..."},
		{name: "daemon set updating", viewer: daemonSetViewer{}, obj: ds(2, 2, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1}),
			wantMsg: `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`},
		{name: "daemon set waiting for availability", viewer: daemonSetViewer{}, obj: ds(2, 2, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 2}),
			wantMsg: `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`},
		{name: "daemon set done", viewer: daemonSetViewer{}, obj: ds(2, 2, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}),
			wantMsg: `daemon set "agent" successfully rolled out`, wantDone: true},
		{name: "daemon set updated on delete", viewer: daemonSetViewer{}, obj: onDelete,
			wantErr: `rollout status is only available for the RollingUpdate strategy; daemon set "agent" uses OnDelete`},
		{name: "stateful set not ready", viewer: statefulSetViewer{}, obj: sts(3, 0, appsv1.StatefulSetStatus{ReadyReplicas: 1}),
			wantMsg: "Waiting for 2 pods to be ready..."},
		{name: "stateful set partitioned", viewer: statefulSetViewer{}, obj: sts(3, 1, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 1}),
			wantMsg: "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."},
		{name: "stateful set done", viewer: statefulSetViewer{}, obj: sts(3, 0, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 3}),
			wantMsg: "partitioned roll out complete: 3 new pods have been updated...", wantDone: true},
		{name: "paused deployment", viewer: &deploymentViewer{}, obj: func() *appsv1.Deployment {
			d := newWebDeployment(2, "x")
			d.Spec.Paused = true
			d.Status.UpdatedReplicas = 1
			return d
		}(), wantMsg: `Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated... (paused: 'orchctl rollout resume deployment/web' resumes it)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, done, err := tc.viewer.status(tc.obj)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if msg != tc.wantMsg || done != tc.wantDone || gotErr != tc.wantErr {
				t.Errorf("got %q, done %v, error %q; want %q, %v, %q", msg, done, gotErr, tc.wantMsg, tc.wantDone, tc.wantErr)
			}
		})
	}
}
