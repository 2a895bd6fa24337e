package api

import (
	"encoding/json"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// selectable is the slim projection of a stored object that label and field
// selectors read. Decoding into it skips everything else in the object.
type selectable struct {
	Metadata struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		NodeName      string `json:"nodeName"`
		RestartPolicy string `json:"restartPolicy"`
		SchedulerName string `json:"schedulerName"`
		Unschedulable bool   `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		Phase     string `json:"phase"`
		PodIP     string `json:"podIP"`
		Replicas  int64  `json:"replicas"`
		Succeeded int64  `json:"succeeded"`
	} `json:"status"`
	// Secrets and events.
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	InvolvedObject struct {
		Kind            string `json:"kind"`
		Namespace       string `json:"namespace"`
		Name            string `json:"name"`
		UID             string `json:"uid"`
		APIVersion      string `json:"apiVersion"`
		ResourceVersion string `json:"resourceVersion"`
		FieldPath       string `json:"fieldPath"`
	} `json:"involvedObject"`
	ReportingComponent string `json:"reportingComponent"`
	Source             struct {
		Component string `json:"component"`
	} `json:"source"`
}

func boolString(b bool) string { return strconv.FormatBool(b) }

func intString(i int64) string { return strconv.FormatInt(i, 10) }

func decodeSelectable(data []byte) (*selectable, error) {
	s := &selectable{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, err
	}
	return s, nil
}

// filter is a parsed label and field selector for one resource.
type filter struct {
	res    *resource
	labels labels.Selector
	fields fields.Selector
}

// parseFilter parses labelSelector and fieldSelector query values; an
// unknown field label is an error, as in Kubernetes.
func parseFilter(res *resource, labelSel, fieldSel string) (*filter, error) {
	f := &filter{res: res, labels: labels.Everything(), fields: fields.Everything()}
	if labelSel != "" {
		ls, err := labels.Parse(labelSel)
		if err != nil {
			return nil, fmt.Errorf("invalid labelSelector %q: %v", labelSel, err)
		}
		f.labels = ls
	}
	if fieldSel != "" {
		fs, err := fields.ParseSelector(fieldSel)
		if err != nil {
			return nil, fmt.Errorf("invalid fieldSelector %q: %v", fieldSel, err)
		}
		for _, req := range fs.Requirements() {
			if req.Field == "metadata.name" || req.Field == "metadata.namespace" {
				continue
			}
			if _, ok := res.fields[req.Field]; !ok {
				return nil, fmt.Errorf("field label not supported: %s (%s supports metadata.name, metadata.namespace%s)", req.Field, res.name, extraFields(res))
			}
		}
		f.fields = fs
	}
	return f, nil
}

func extraFields(res *resource) string {
	s := ""
	for _, r := range sortedKeys(res.fields) {
		s += ", " + r
	}
	return s
}

func (f *filter) empty() bool { return f.labels.Empty() && f.fields.Empty() }

// name returns the single name a field selector pins, if any, so a list can
// read one key instead of scanning.
func (f *filter) name() (string, bool) {
	return f.fields.RequiresExactMatch("metadata.name")
}

func (f *filter) matches(s *selectable) bool {
	if !f.labels.Matches(labels.Set(s.Metadata.Labels)) {
		return false
	}
	if f.fields.Empty() {
		return true
	}
	set := fields.Set{"metadata.name": s.Metadata.Name, "metadata.namespace": s.Metadata.Namespace}
	for name, get := range f.res.fields {
		set[name] = get(s)
	}
	return f.fields.Matches(set)
}
