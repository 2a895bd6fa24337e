package api

import (
	"net/http"
	"strings"
)

// requestInfo is what a Kubernetes resource URL says.
type requestInfo struct {
	group, version string
	namespace      string
	resource       *resource
	name           string
	subresource    string
	watchPath      bool // the legacy /watch/ path segment
	verb           string
}

// parseResourcePath parses the path after /api or /apis:
//
//	/api/v1/[watch/][namespaces/NS/]RESOURCE[/NAME[/SUB]]
//	/apis/GROUP/VERSION/[watch/][namespaces/NS/]RESOURCE[/NAME[/SUB]]
//
// "namespaces/NAME[/SUB]" is the namespace object itself. The boolean is
// false for paths that are not resource paths (discovery documents).
func (s *Server) parseResourcePath(path string) (*requestInfo, bool, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	ri := &requestInfo{}
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		ri.version = parts[1]
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		ri.group, ri.version = parts[1], parts[2]
		parts = parts[3:]
	default:
		return nil, false, nil
	}
	if len(parts) == 0 {
		return nil, false, nil
	}
	if parts[0] == "watch" {
		ri.watchPath = true
		parts = parts[1:]
	}
	switch {
	case len(parts) == 3 && parts[0] == "namespaces" && (parts[2] == "status" || parts[2] == "finalize"):
		// /namespaces/NAME/status and /finalize: the namespace object's own.
	case len(parts) >= 3 && parts[0] == "namespaces":
		ri.namespace = parts[1]
		parts = parts[2:]
	}
	if len(parts) == 0 || len(parts) > 3 {
		return nil, true, errNotFoundPath
	}
	res := s.reg.lookup(ri.group, ri.version, parts[0])
	if res == nil {
		return nil, true, errNotFoundPath
	}
	ri.resource = res
	if len(parts) >= 2 {
		ri.name = parts[1]
	}
	if len(parts) == 3 {
		ri.subresource = parts[2]
	}
	if res.name == "namespaces" && ri.namespace != "" {
		// /namespaces/NS/namespaces/...: not a thing.
		return nil, true, errNotFoundPath
	}
	return ri, true, nil
}

// verbFor maps an HTTP method on a parsed path to a Kubernetes verb.
func verbFor(r *http.Request, ri *requestInfo) string {
	watch := ri.watchPath || isTrue(r.URL.Query().Get("watch"))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watch:
			return "watch"
		case ri.name == "":
			return "list"
		}
		return "get"
	case http.MethodPost:
		if ri.name != "" && ri.subresource == "" {
			return ""
		}
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if ri.name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return ""
}

func isTrue(v string) bool { return v == "1" || v == "true" || v == "True" }
