package agent

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The files of projected volumes (configMap, secret, downwardAPI and
// projected), computed from their sources; atomicwriter.go writes them.

// configMapPayload is the files of a configMap volume or projection:
// every key (data and binaryData) with the default mode, or the listed
// items with their paths and modes. A missing ConfigMap or key fails
// unless optional.
func configMapPayload(ns string, src *corev1.ConfigMapVolumeSource, configs configLookup) (map[string]fileProjection, error) {
	return configMapFiles(ns, src.Name, src.Items, src.Optional, modeOr(src.DefaultMode, corev1.ConfigMapVolumeSourceDefaultMode), configs)
}

func configMapFiles(ns, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, configs configLookup) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	cm, err := configs.configMap(ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if isTrue(optional) {
				return payload, nil
			}
			return nil, errConfigMapNotFound(name)
		}
		return nil, err
	}
	if len(items) == 0 {
		for k, v := range cm.Data {
			payload[k] = fileProjection{Data: []byte(v), Mode: mode}
		}
		for k, v := range cm.BinaryData {
			payload[k] = fileProjection{Data: v, Mode: mode}
		}
		return payload, nil
	}
	for _, it := range items {
		f := fileProjection{Mode: modeOr(it.Mode, int32(mode))}
		if s, ok := cm.Data[it.Key]; ok {
			f.Data = []byte(s)
		} else if b, ok := cm.BinaryData[it.Key]; ok {
			f.Data = b
		} else {
			if isTrue(optional) {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", it.Key)
		}
		payload[it.Path] = f
	}
	return payload, nil
}

// secretPayload is configMapPayload for Secrets.
func secretPayload(ns string, src *corev1.SecretVolumeSource, configs configLookup) (map[string]fileProjection, error) {
	return secretFiles(ns, src.SecretName, src.Items, src.Optional, modeOr(src.DefaultMode, corev1.SecretVolumeSourceDefaultMode), configs)
}

func secretFiles(ns, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, configs configLookup) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	sec, err := configs.secret(ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if isTrue(optional) {
				return payload, nil
			}
			return nil, errSecretNotFound(name)
		}
		return nil, err
	}
	if len(items) == 0 {
		for k, v := range sec.Data {
			payload[k] = fileProjection{Data: v, Mode: mode}
		}
		return payload, nil
	}
	for _, it := range items {
		v, ok := sec.Data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", it.Key)
		}
		payload[it.Path] = fileProjection{Data: v, Mode: modeOr(it.Mode, int32(mode))}
	}
	return payload, nil
}

// downwardAPIPayload is the files of a downwardAPI volume or projection.
func downwardAPIPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode fs.FileMode, allocatable corev1.ResourceList) (map[string]fileProjection, error) {
	payload := map[string]fileProjection{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = downwardField(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, fmt.Errorf("%s: container %q not found in the pod", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = resourceValue(c, it.ResourceFieldRef, allocatable)
		default:
			err = fmt.Errorf("names neither fieldRef nor resourceFieldRef")
		}
		if err != nil {
			return nil, fmt.Errorf("downward API file %s: %v", it.Path, err)
		}
		payload[it.Path] = fileProjection{Data: []byte(v), Mode: modeOr(it.Mode, int32(mode))}
	}
	return payload, nil
}

// downwardField is a fieldRef's value in a downward API file: whole label
// and annotation maps are one key="value" line per entry, sorted, as the
// kubelet writes them.
func downwardField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	return fieldValue(pod, path, pod.Status.PodIP, pod.Status.HostIP)
}

// formatMap is the kubelet's fieldpath.FormatMap.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// projectedPayload merges the sources of a projected volume. Sources the
// agent cannot provide (service account tokens, trust bundles) are left
// out with a warning.
func projectedPayload(pod *corev1.Pod, volume string, src *corev1.ProjectedVolumeSource, configs configLookup, allocatable corev1.ResourceList) (map[string]fileProjection, []string, error) {
	mode := modeOr(src.DefaultMode, corev1.ProjectedVolumeSourceDefaultMode)
	payload := map[string]fileProjection{}
	var warns []string
	for _, s := range src.Sources {
		var files map[string]fileProjection
		var err error
		switch {
		case s.ConfigMap != nil:
			files, err = configMapFiles(pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode, configs)
		case s.Secret != nil:
			files, err = secretFiles(pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode, configs)
		case s.DownwardAPI != nil:
			files, err = downwardAPIPayload(pod, s.DownwardAPI.Items, mode, allocatable)
		case s.ServiceAccountToken != nil:
			warns = append(warns, fmt.Sprintf("projected volume %q: serviceAccountToken sources are not supported by orch; %s is left out", volume, s.ServiceAccountToken.Path))
		default:
			warns = append(warns, fmt.Sprintf("projected volume %q: a source of a kind orch does not support is left out", volume))
		}
		if err != nil {
			return nil, warns, err
		}
		for p, f := range files {
			payload[p] = f
		}
	}
	return payload, warns, nil
}
