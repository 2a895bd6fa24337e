package validation

import (
	"path"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// volumeSourceFields lists the JSON names of the VolumeSource fields in
// declaration order, found once by reflection so that a source added to
// k8s.io/api is counted (and reported as unsupported) without code changes.
var volumeSourceFields = jsonFieldNames(reflect.TypeOf(corev1.VolumeSource{}))

// jsonFieldNames returns, for each pointer field of struct type t, its JSON
// name; other fields get "" and are skipped by the callers.
func jsonFieldNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		if f.Type.Kind() != reflect.Pointer {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[i] = name
	}
	return names
}

// volumeSources returns the JSON names of the sources set in vs, in
// declaration order, so messages are stable.
func volumeSources(vs *corev1.VolumeSource) []string {
	v := reflect.ValueOf(vs).Elem()
	var set []string
	for i, name := range volumeSourceFields {
		if name != "" && !v.Field(i).IsNil() {
			set = append(set, name)
		}
	}
	return set
}

// validateVolumes checks the pod's volumes and returns the set of valid
// volume names for the mounts to refer to.
func validateVolumes(vols []corev1.Volume, p *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		vp := p.Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(vp.Child("name"), ""))
		} else {
			errs = append(errs, dnsLabel(v.Name, vp.Child("name"))...)
			if names[v.Name] {
				errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
			}
			names[v.Name] = true
		}
		switch set := volumeSources(&v.VolumeSource); len(set) {
		case 0:
			errs = append(errs, field.Required(vp, "must specify a volume type, such as emptyDir, configMap, secret or persistentVolumeClaim"))
		case 1:
			errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
		default:
			errs = append(errs, field.Forbidden(vp.Child(set[1]), "may not specify more than 1 volume type; found "+strings.Join(set, ", ")))
		}
	}
	return names, errs
}

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket,
	corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// validateVolumeSource checks the source types orch implements. Others are
// stored as given and reported by Unsupported.
func validateVolumeSource(vs *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if hp := vs.HostPath; hp != nil {
		pp := p.Child("hostPath")
		switch {
		case hp.Path == "":
			errs = append(errs, field.Required(pp.Child("path"), "an absolute path on the node"))
		case !path.IsAbs(hp.Path):
			errs = append(errs, field.Invalid(pp.Child("path"), hp.Path, "must be an absolute path"))
		case hasDotDot(hp.Path):
			errs = append(errs, field.Invalid(pp.Child("path"), hp.Path, "must not contain '..'"))
		}
		if hp.Type != nil && *hp.Type != corev1.HostPathUnset {
			errs = append(errs, oneOf(*hp.Type, pp.Child("type"), hostPathTypes...)...)
		}
	}
	if ed := vs.EmptyDir; ed != nil {
		ep := p.Child("emptyDir")
		if ed.Medium != corev1.StorageMediumDefault {
			errs = append(errs, oneOf(ed.Medium, ep.Child("medium"), corev1.StorageMediumDefault, corev1.StorageMediumMemory, corev1.StorageMediumHugePages)...)
		}
		if ed.SizeLimit != nil && ed.SizeLimit.Sign() < 0 {
			errs = append(errs, field.Invalid(ep.Child("sizeLimit"), ed.SizeLimit.String(), "must be greater than or equal to 0"))
		}
	}
	if cm := vs.ConfigMap; cm != nil {
		cp := p.Child("configMap")
		if cm.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), "the name of a ConfigMap in the pod's namespace"))
		}
		errs = append(errs, validateMode(cm.DefaultMode, cp.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(cm.Items, cp.Child("items"))...)
	}
	if s := vs.Secret; s != nil {
		sp := p.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(sp.Child("secretName"), "the name of a Secret in the pod's namespace"))
		}
		errs = append(errs, validateMode(s.DefaultMode, sp.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.Items, sp.Child("items"))...)
	}
	if da := vs.DownwardAPI; da != nil {
		dp := p.Child("downwardAPI")
		errs = append(errs, validateMode(da.DefaultMode, dp.Child("defaultMode"))...)
		errs = append(errs, validateDownwardAPIFiles(da.Items, dp.Child("items"))...)
	}
	if pr := vs.Projected; pr != nil {
		errs = append(errs, validateProjected(pr, p.Child("projected"))...)
	}
	if pvc := vs.PersistentVolumeClaim; pvc != nil && pvc.ClaimName == "" {
		errs = append(errs, field.Required(p.Child("persistentVolumeClaim", "claimName"), "the name of a PersistentVolumeClaim in the pod's namespace"))
	}
	return errs
}

func validateProjected(pr *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateMode(pr.DefaultMode, p.Child("defaultMode"))...)
	paths := map[string]bool{}
	for i := range pr.Sources {
		src := &pr.Sources[i]
		sp := p.Child("sources").Index(i)
		var set []string
		if src.ConfigMap != nil {
			set = append(set, "configMap")
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, sp.Child("configMap", "items"))...)
			for j, it := range src.ConfigMap.Items {
				errs = append(errs, projectedPathOnce(it.Path, paths, sp.Child("configMap", "items").Index(j).Child("path"))...)
			}
		}
		if src.Secret != nil {
			set = append(set, "secret")
			if src.Secret.Name == "" {
				errs = append(errs, field.Required(sp.Child("secret", "name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.Secret.Items, sp.Child("secret", "items"))...)
			for j, it := range src.Secret.Items {
				errs = append(errs, projectedPathOnce(it.Path, paths, sp.Child("secret", "items").Index(j).Child("path"))...)
			}
		}
		if src.DownwardAPI != nil {
			set = append(set, "downwardAPI")
			errs = append(errs, validateDownwardAPIFiles(src.DownwardAPI.Items, sp.Child("downwardAPI", "items"))...)
			for j, it := range src.DownwardAPI.Items {
				errs = append(errs, projectedPathOnce(it.Path, paths, sp.Child("downwardAPI", "items").Index(j).Child("path"))...)
			}
		}
		if src.ServiceAccountToken != nil {
			set = append(set, "serviceAccountToken")
			if src.ServiceAccountToken.Path == "" {
				errs = append(errs, field.Required(sp.Child("serviceAccountToken", "path"), ""))
			}
		}
		if src.ClusterTrustBundle != nil {
			set = append(set, "clusterTrustBundle")
		}
		if src.PodCertificate != nil {
			set = append(set, "podCertificate")
		}
		switch len(set) {
		case 0:
			errs = append(errs, field.Required(sp, "must specify one of configMap, secret, downwardAPI or serviceAccountToken"))
		case 1:
		default:
			errs = append(errs, field.Forbidden(sp.Child(set[1]), "may not specify more than 1 source per entry; found "+strings.Join(set, ", ")))
		}
	}
	return errs
}

// projectedPathOnce reports a file path that two projected sources both
// write, where one would silently overwrite the other.
func projectedPathOnce(v string, seen map[string]bool, p *field.Path) field.ErrorList {
	if v == "" {
		return nil
	}
	if seen[v] {
		return field.ErrorList{field.Duplicate(p, v)}
	}
	seen[v] = true
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(ip.Child("key"), it.Key, utilvalidation.IsConfigMapKey(it.Key))...)
		}
		errs = append(errs, validateFilePath(it.Path, ip.Child("path"))...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

func validateDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, validateFilePath(it.Path, ip.Child("path"))...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
		switch {
		case it.FieldRef != nil && it.ResourceFieldRef != nil:
			errs = append(errs, field.Invalid(ip, "", "may not have both fieldRef and resourceFieldRef"))
		case it.FieldRef != nil:
			errs = append(errs, validateFieldRef(it.FieldRef, ip.Child("fieldRef"))...)
		case it.ResourceFieldRef != nil:
			errs = append(errs, validateResourceFieldRef(it.ResourceFieldRef, ip.Child("resourceFieldRef"))...)
		default:
			errs = append(errs, field.Required(ip, "must specify fieldRef or resourceFieldRef"))
		}
	}
	return errs
}

// validateFilePath checks the name of a file a volume writes: relative,
// staying inside the volume, and not starting with ".." which the kubelet
// convention reserves for its own bookkeeping.
func validateFilePath(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "a file name relative to the volume")}
	}
	errs := validateLocalPath(v, p)
	if strings.HasPrefix(v, "..") && len(errs) == 0 {
		errs = append(errs, field.Invalid(p, v, "must not start with '..'"))
	}
	return errs
}

// validateMode checks file permission bits: 0 to 0777 (511).
func validateMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(p, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

var mountPropagationModes = []corev1.MountPropagationMode{
	corev1.MountPropagationNone, corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional,
}

// validateVolumeMounts checks one container's mounts against the pod's
// volumes. A mount path used twice would hide one mount under the other.
func validateVolumeMounts(mounts []corev1.VolumeMount, p *field.Path, volumes map[string]bool) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mp.Child("name"), "the name of one of the pod's volumes"))
		case !volumes[m.Name]:
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), "an absolute path in the container"))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case paths[path.Clean(m.MountPath)]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[path.Clean(m.MountPath)] = true
		if m.SubPath != "" {
			errs = append(errs, validateLocalPath(m.SubPath, mp.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalPath(m.SubPathExpr, mp.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			errs = append(errs, oneOf(*m.MountPropagation, mp.Child("mountPropagation"), mountPropagationModes...)...)
		}
	}
	return errs
}

// hasDotDot reports whether a slash-separated path has a ".." element,
// which would let it climb out of the directory it is joined to.
func hasDotDot(v string) bool {
	for _, part := range strings.Split(v, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}
