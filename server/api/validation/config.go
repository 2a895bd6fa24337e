package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDataSize bounds a ConfigMap's or Secret's data: they are stored in the
// replicated log and sent to every agent that mounts them.
const maxDataSize = corev1.MaxSecretSize

var (
	dataPath       = field.NewPath("data")
	binaryDataPath = field.NewPath("binaryData")
	stringDataPath = field.NewPath("stringData")
	immutablePath  = field.NewPath("immutable")
)

func validateConfigMapCreate(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMetaCreate(&cm.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateConfigMapData(cm)...)
}

// validateConfigMapUpdate refuses changes to an immutable ConfigMap, whose
// point is that agents may cache it forever without watching it.
func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	dataChanged := changed(cm.Data, old.Data) || changed(cm.BinaryData, old.BinaryData)
	if dataChanged {
		errs = append(errs, validateConfigMapData(cm)...)
	}
	return append(errs, validateImmutable(cm.Immutable, old.Immutable, dataChanged)...)
}

func validateConfigMapData(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		errs = append(errs, validateDataKey(k, dataPath)...)
		size += len(k) + len(cm.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		errs = append(errs, validateDataKey(k, binaryDataPath)...)
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(binaryDataPath.Key(k), k, "duplicate of a key present in data: a key may be in data or binaryData, not both"))
		}
		size += len(k) + len(cm.BinaryData[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	return errs
}

func validateDataKey(k string, p *field.Path) field.ErrorList {
	if k == "" {
		return field.ErrorList{field.Invalid(p.Key(k), k, "keys must not be empty")}
	}
	return invalidEach(p.Key(k), k, utilvalidation.IsConfigMapKey(k))
}

// validateImmutable refuses data changes once immutable is set, and
// refuses unsetting it: consumers may have cached the data for good.
func validateImmutable(immutable, old *bool, dataChanged bool) field.ErrorList {
	if old == nil || !*old {
		return nil
	}
	var errs field.ErrorList
	if immutable == nil || !*immutable {
		errs = append(errs, field.Forbidden(immutablePath, "field is immutable when `immutable` is set"))
	}
	if dataChanged {
		errs = append(errs, field.Forbidden(dataPath, "field is immutable when `immutable` is set: create a new object with the new data"))
	}
	return errs
}

func validateSecretCreate(s *corev1.Secret) field.ErrorList {
	errs := validateMetaCreate(&s.ObjectMeta, true, nameIsSubdomain)
	return append(errs, validateSecretData(s)...)
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	dataChanged := changed(s.Data, old.Data) || changed(s.StringData, old.StringData)
	if dataChanged || s.Type != old.Type {
		errs = append(errs, validateSecretData(s)...)
	}
	// Consumers decide how to read a secret by its type.
	if s.Type != old.Type {
		errs = append(errs, field.Invalid(field.NewPath("type"), s.Type, fmt.Sprintf("field is immutable: keep %q, or create a new Secret", old.Type)))
	}
	return append(errs, validateImmutable(s.Immutable, old.Immutable, dataChanged)...)
}

func validateSecretData(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		errs = append(errs, validateDataKey(k, dataPath)...)
		size += len(s.Data[k])
	}
	// stringData is folded into data by defaulting; it is checked in case
	// a caller validates an object that was not defaulted.
	for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
		errs = append(errs, validateDataKey(k, stringDataPath)...)
		if _, dup := s.Data[k]; !dup {
			size += len(s.StringData[k])
		}
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	errs = append(errs, validateSecretType(s)...)
	return errs
}

// validateSecretType checks the keys that the well-known secret types
// promise their consumers (image pulls, TLS termination).
func validateSecretType(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	has := func(k string) bool {
		if _, ok := s.Data[k]; ok {
			return true
		}
		_, ok := s.StringData[k]
		return ok
	}
	value := func(k string) []byte {
		if v, ok := s.StringData[k]; ok {
			return []byte(v)
		}
		return s.Data[k]
	}
	requireJSON := func(k string, withAuths bool) {
		if !has(k) {
			errs = append(errs, field.Required(dataPath.Key(k), fmt.Sprintf("required for secrets of type %s", s.Type)))
			return
		}
		var m map[string]any
		if err := json.Unmarshal(value(k), &m); err != nil {
			// The parser's message may quote the data; say where instead.
			msg := "must be a JSON object"
			var se *json.SyntaxError
			if errors.As(err, &se) {
				msg = fmt.Sprintf("must be a JSON object: syntax error at byte %d", se.Offset)
			}
			errs = append(errs, field.Invalid(dataPath.Key(k), "<secret contents redacted>", msg))
			return
		}
		// A Docker config.json keeps its registry credentials in auths;
		// without it image pulls find nothing.
		if _, ok := m["auths"].(map[string]any); withAuths && !ok {
			errs = append(errs, field.Invalid(dataPath.Key(k), "<secret contents redacted>", `must be a Docker config.json with an "auths" object mapping registries to credentials`))
		}
	}
	require := func(keys ...string) {
		for _, k := range keys {
			if !has(k) {
				errs = append(errs, field.Required(dataPath.Key(k), fmt.Sprintf("required for secrets of type %s", s.Type)))
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		requireJSON(corev1.DockerConfigJsonKey, true)
	case corev1.SecretTypeDockercfg:
		requireJSON(corev1.DockerConfigKey, false)
	case corev1.SecretTypeTLS:
		require(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	case corev1.SecretTypeSSHAuth:
		require(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeBasicAuth:
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), "username or password is required for secrets of type "+string(s.Type)))
		}
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), "required for secrets of type "+string(s.Type)))
		}
	}
	return errs
}
