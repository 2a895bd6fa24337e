package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestValidateConfigMap(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validConfigMap()},
		{name: "empty", obj: configMapWith(func(cm *corev1.ConfigMap) { cm.Data = nil })},
		{name: "bad keys", obj: configMapWith(func(cm *corev1.ConfigMap) {
			cm.Data = map[string]string{"app conf": "x", "..": "y", "ok.yaml": "z"}
			cm.BinaryData = map[string][]byte{"ok.yaml": {1}, "a/b": {2}}
		}), want: []string{"data[app conf]", "data[..]", "binaryData[ok.yaml]", "binaryData[a/b]"}},
		{name: "too big", obj: configMapWith(func(cm *corev1.ConfigMap) {
			cm.Data = map[string]string{"a": strings.Repeat("x", 600<<10)}
			cm.BinaryData = map[string][]byte{"b": make([]byte, 600<<10)}
		}), want: []string{"data"}},
		{name: "update: data changed", obj: configMapWith(func(cm *corev1.ConfigMap) { cm.Data["app.conf"] = "x=2" }), old: validConfigMap()},
		{name: "update: immutable data changed", obj: configMapWith(func(cm *corev1.ConfigMap) {
			cm.Immutable = ptr(true)
			cm.Data["app.conf"] = "x=2"
		}), old: configMapWith(func(cm *corev1.ConfigMap) { cm.Immutable = ptr(true) }), want: []string{"data"}},
		{name: "update: immutable unset", obj: validConfigMap(),
			old:  configMapWith(func(cm *corev1.ConfigMap) { cm.Immutable = ptr(true) }),
			want: []string{"immutable"}},
		{name: "update: immutable object relabelled", obj: configMapWith(func(cm *corev1.ConfigMap) {
			cm.Immutable = ptr(true)
			cm.Labels = map[string]string{"a": "b"}
		}), old: configMapWith(func(cm *corev1.ConfigMap) { cm.Immutable = ptr(true) })},
	})
}

func TestValidateSecret(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "valid", obj: validSecret()},
		{name: "string data", obj: secretWith(func(s *corev1.Secret) { s.StringData = map[string]string{"token": "abc"} })},
		{name: "docker config", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockerConfigJson
			s.Data = map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.local:5000":{"auth":"dTpw"}}}`)}
		})},
		{name: "tls", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{corev1.TLSCertKey: []byte("crt"), corev1.TLSPrivateKeyKey: []byte("key")}
		})},
		{name: "bad keys", obj: secretWith(func(s *corev1.Secret) {
			s.Data = map[string][]byte{"my key": nil}
			s.StringData = map[string]string{"other key": "x"}
		}), want: []string{"data[my key]", "data[other key]"}},
		{name: "bad keys, not defaulted", raw: true, obj: secretWith(func(s *corev1.Secret) {
			s.Data = map[string][]byte{"my key": nil}
			s.StringData = map[string]string{"other key": "x"}
		}), want: []string{"data[my key]", "stringData[other key]"}},
		{name: "too big", obj: secretWith(func(s *corev1.Secret) {
			s.Data = map[string][]byte{"a": make([]byte, 1<<20), "b": {1}}
		}), want: []string{"data"}},
		{name: "docker config missing", obj: secretWith(func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson }),
			want: []string{"data[.dockerconfigjson]"}},
		{name: "docker config not JSON", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockerConfigJson
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: "{auths"}
		}), want: []string{"data[.dockerconfigjson]"}},
		{name: "docker config without auths", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockerConfigJson
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: `{"credsStore":"hunter2"}`}
		}), want: []string{"data[.dockerconfigjson]"}},
		{name: "docker config with auths not an object", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockerConfigJson
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: `{"auths":"hunter2"}`}
		}), want: []string{"data[.dockerconfigjson]"}},
		{name: "legacy dockercfg needs no auths", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockercfg
			s.StringData = map[string]string{corev1.DockerConfigKey: `{"registry.local":{"auth":"dTpw"}}`}
		})},
		{name: "basic auth without username or password", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeBasicAuth
			s.Data = map[string][]byte{"token": []byte("t")}
		}), want: []string{"data[username]"}},
		{name: "basic auth with password only", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeBasicAuth
			s.Data = map[string][]byte{corev1.BasicAuthPasswordKey: []byte("p")}
		})},
		{name: "ssh auth without key", obj: secretWith(func(s *corev1.Secret) { s.Type = corev1.SecretTypeSSHAuth }),
			want: []string{"data[ssh-privatekey]"}},
		{name: "tls without key", obj: secretWith(func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{corev1.TLSCertKey: []byte("crt")}
		}), want: []string{"data[tls.key]"}},
		{name: "update: type changed", obj: secretWith(func(s *corev1.Secret) { s.Type = "example.com/custom" }), old: validSecret(),
			want: []string{"type"}},
		{name: "update: immutable data changed", obj: secretWith(func(s *corev1.Secret) {
			s.Immutable = ptr(true)
			s.StringData = map[string]string{"password": "new"}
		}), old: secretWith(func(s *corev1.Secret) { s.Immutable = ptr(true) }), want: []string{"data"}},
	})
}

func TestSecretErrorsDoNotLeakData(t *testing.T) {
	s := secretWith(func(s *corev1.Secret) {
		s.Type = corev1.SecretTypeDockerConfigJson
		s.Data = map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": "hunter2`)}
	})
	noAuths := secretWith(func(s *corev1.Secret) {
		s.Type = corev1.SecretTypeDockerConfigJson
		s.Data = map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": "hunter2"}`)}
	})
	badKey := secretWith(func(s *corev1.Secret) { s.StringData = map[string]string{"bad key": "hunter2"} })
	for _, obj := range []*corev1.Secret{s, noAuths, badKey} {
		errs := ValidateCreate(obj)
		if len(errs) == 0 {
			t.Fatalf("got no errors for %v, want some", obj.Data)
		}
		for _, e := range errs {
			if strings.Contains(e.Error(), "hunter2") {
				t.Errorf("got %q, want no secret data in errors", e.Error())
			}
		}
	}
}
