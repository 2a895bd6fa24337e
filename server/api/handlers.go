package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"orch.dev/orch/raftstore"
)

// serveResource dispatches a parsed resource request by verb.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	res := ri.resource
	if !res.namespaced && ri.namespace != "" {
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	if res.namespaced && ri.namespace == "" && ri.name != "" {
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	if res.namespaced && ri.namespace == "" && ri.verb != "list" && ri.verb != "watch" {
		writeError(w, badRequest("%s is namespaced: use /namespaces/NAMESPACE/%s", res.name, res.name))
		return
	}
	switch ri.subresource {
	case "":
	case "status":
		if !res.status {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
	case "scale":
		if res.scale == nil {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
		s.serveScale(w, r, ri)
		return
	case "binding":
		if res.name != "pods" || r.Method != http.MethodPost {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
		s.serveBinding(w, r, ri)
		return
	case "eviction":
		if res.name != "pods" || r.Method != http.MethodPost {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
		s.serveEviction(w, r, ri)
		return
	case "log", "exec", "portforward":
		if res.name != "pods" || ri.name == "" {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
		s.serveNodeProxy(w, r, ri)
		return
	case "finalize":
		if res.name != "namespaces" || r.Method != http.MethodPut {
			writeError(w, pathNotFound(r.URL.Path))
			return
		}
	default:
		writeError(w, pathNotFound(r.URL.Path))
		return
	}
	if ri.subresource != "" && (ri.verb == "list" || ri.verb == "watch" || ri.verb == "create" || ri.verb == "delete") {
		writeError(w, apierrors.NewMethodNotSupported(res.gr(), ri.verb+" on "+ri.subresource))
		return
	}
	switch ri.verb {
	case "get":
		s.serveGet(w, r, ri)
	case "list":
		s.serveList(w, r, ri)
	case "watch":
		s.serveWatch(w, r, ri)
	case "create":
		s.serveCreate(w, r, ri)
	case "update":
		s.serveUpdate(w, r, ri)
	case "patch":
		s.servePatch(w, r, ri)
	case "delete":
		s.serveDelete(w, r, ri)
	case "deletecollection":
		s.serveDeleteCollection(w, r, ri)
	default:
		writeError(w, apierrors.NewMethodNotSupported(res.gr(), r.Method))
	}
}

// readOptions turns ?resourceVersion= into store read options, with
// Kubernetes semantics: unset is a linearizable read, "0" is any local
// state, N is at least N.
func readOptions(rv string) (raftstore.ReadOptions, error) {
	switch rv {
	case "":
		return raftstore.ReadOptions{Linearizable: true}, nil
	case "0":
		return raftstore.ReadOptions{}, nil
	}
	n, ok := parseRV(rv)
	if !ok {
		return raftstore.ReadOptions{}, badRequest("resourceVersion %q is not a valid resource version (a non-negative integer)", rv)
	}
	return raftstore.ReadOptions{MinRevision: n}, nil
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	ro, err := readOptions(r.URL.Query().Get("resourceVersion"))
	if err != nil {
		writeError(w, err)
		return
	}
	res := ri.resource
	kv, _, err := s.store.Get(ctx, res.key(ri.namespace, ri.name), ro)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	if kv == nil {
		writeError(w, notFound(res, ri.name))
		return
	}
	if kv, err = s.plain(ctx, kv); err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, withRV(kv.Value, kv.ModRevision))
}

// continueToken is the state of a paginated list: the revision the first
// page was read at and the key to go on from.
type continueToken struct {
	Rev   int64  `json:"rv"`
	Start string `json:"start"`
}

func encodeContinue(rev int64, start string) string {
	b, _ := json.Marshal(continueToken{Rev: rev, Start: start}) // two plain fields always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Rev <= 0 {
		return t, badRequest("continue token %q is not valid: pass the continue value of the previous list response unchanged", s)
	}
	return t, nil
}

// listParams are the query parameters of list and watch.
type listParams struct {
	filter          *filter
	rv              string
	rvMatch         string
	limit           int64
	cont            string
	bookmarks       bool
	sendInitial     *bool
	timeout         time.Duration
	hasTimeout      bool
	resourceVersion int64
}

func parseListParams(r *http.Request, res *resource) (*listParams, error) {
	q := r.URL.Query()
	f, err := parseFilter(res, q.Get("labelSelector"), q.Get("fieldSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	p := &listParams{filter: f, rv: q.Get("resourceVersion"), rvMatch: q.Get("resourceVersionMatch"), cont: q.Get("continue")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("limit %q must be a non-negative integer", v)
		}
		p.limit = n
	}
	p.bookmarks = isTrue(q.Get("allowWatchBookmarks"))
	if v := q.Get("sendInitialEvents"); v != "" {
		b := isTrue(v)
		p.sendInitial = &b
	}
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("timeoutSeconds %q must be a non-negative integer", v)
		}
		if n > 0 {
			p.timeout, p.hasTimeout = time.Duration(n)*time.Second, true
		}
	}
	switch p.rvMatch {
	case "", string(metav1.ResourceVersionMatchNotOlderThan), string(metav1.ResourceVersionMatchExact):
	default:
		return nil, badRequest("resourceVersionMatch %q must be NotOlderThan or Exact", p.rvMatch)
	}
	if p.rvMatch != "" && p.rv == "" {
		return nil, badRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if p.rvMatch == string(metav1.ResourceVersionMatchExact) && p.rv == "0" {
		return nil, badRequest("resourceVersionMatch Exact is forbidden for resourceVersion 0")
	}
	if p.cont != "" && p.rv != "" && p.rv != "0" {
		return nil, badRequest("specifying resourceVersion is not allowed when using continue")
	}
	if p.rv != "" {
		n, ok := parseRV(p.rv)
		if !ok {
			return nil, badRequest("resourceVersion %q is not a valid resource version (a non-negative integer)", p.rv)
		}
		p.resourceVersion = n
	}
	return p, nil
}

// listItems returns the stored encodings (with resourceVersion) of the
// objects that match, the revision they were read at, and the continue
// token when a limit cut the list short.
func (s *Server) listItems(ctx context.Context, ri *requestInfo, p *listParams) ([][]byte, int64, string, error) {
	res := ri.resource
	prefix := res.prefix(ri.namespace)
	opts := raftstore.ListOptions{}
	switch {
	case p.cont != "":
		t, err := decodeContinue(p.cont)
		if err != nil {
			return nil, 0, "", err
		}
		if !strings.HasPrefix(t.Start, prefix) {
			return nil, 0, "", badRequest("continue token is for another list: start a new list without it")
		}
		opts.Revision, opts.StartKey = t.Rev, t.Start
	case p.rvMatch == string(metav1.ResourceVersionMatchExact):
		opts.Revision = p.resourceVersion
	default:
		ro, err := readOptions(p.rv)
		if err != nil {
			return nil, 0, "", err
		}
		opts.ReadOptions = ro
	}
	// A field selector on metadata.name narrows the scan to one key.
	if name, ok := p.filter.name(); ok && (ri.namespace != "" || !res.namespaced) && opts.Revision == 0 {
		kv, rev, err := s.store.Get(ctx, res.key(ri.namespace, name), opts.ReadOptions)
		if err != nil {
			return nil, 0, "", err
		}
		if kv == nil {
			return nil, rev, "", nil
		}
		if kv, err = s.plain(ctx, kv); err != nil {
			return nil, 0, "", err
		}
		if ok, err := s.matches(p.filter, kv); err != nil || !ok {
			return nil, rev, "", err
		}
		return [][]byte{withRV(kv.Value, kv.ModRevision)}, rev, "", nil
	}
	page := int(p.limit)
	if !p.filter.empty() && page > 0 && page < 500 {
		page = 500
	}
	var items [][]byte
	var rev int64
	for {
		opts.Limit = page
		kvs, at, more, err := s.store.List(ctx, prefix, opts)
		if err != nil {
			if opts.Revision > 0 && p.cont != "" && err == raftstore.ErrCompacted {
				return nil, 0, "", apierrors.NewResourceExpired("the continue token is too old to give a consistent list: this server no longer holds that revision; start a new list without continue")
			}
			return nil, 0, "", err
		}
		rev = at
		opts.ReadOptions = raftstore.ReadOptions{}
		opts.Revision = at
		for i, kv := range kvs {
			kv, err := s.plain(ctx, kv)
			if err != nil {
				return nil, 0, "", err
			}
			ok, err := s.matches(p.filter, kv)
			if err != nil {
				return nil, 0, "", err
			}
			if !ok {
				continue
			}
			items = append(items, withRV(kv.Value, kv.ModRevision))
			if p.limit > 0 && int64(len(items)) == p.limit && (more || i < len(kvs)-1) {
				return items, rev, encodeContinue(at, kv.Key+"\x00"), nil
			}
		}
		if !more {
			return items, rev, "", nil
		}
		opts.StartKey = kvs[len(kvs)-1].Key + "\x00"
	}
}

func (s *Server) matches(f *filter, kv *raftstore.KeyValue) (bool, error) {
	if f.empty() {
		return true, nil
	}
	sel, err := decodeSelectable(kv.Value)
	if err != nil {
		return false, fmt.Errorf("decode stored %s: %w", kv.Key, err)
	}
	return f.matches(sel), nil
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	p, err := parseListParams(r, ri.resource)
	if err != nil {
		writeError(w, err)
		return
	}
	items, rev, cont, err := s.listItems(ctx, ri, p)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, encodeList(ri.resource, rev, cont, items))
}

// encodeList writes a Kubernetes list around already-encoded items.
func encodeList(res *resource, rev int64, cont string, items [][]byte) []byte {
	n := 128
	for _, it := range items {
		n += len(it) + 1
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	fmt.Fprintf(b, `{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"%d"`, res.kind+"List", res.apiVersion(), rev)
	if cont != "" {
		fmt.Fprintf(b, `,"continue":%q`, cont)
	}
	b.WriteString(`},"items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// dryRun reports whether the request asks not to persist anything.
func dryRun(r *http.Request) (bool, error) {
	v := r.URL.Query()["dryRun"]
	for _, d := range v {
		if d != "All" {
			return false, badRequest("dryRun must be All, not %q", d)
		}
	}
	return len(v) > 0, nil
}

// namespaceKey is the store key of a namespace object.
func (s *Server) namespaceKey(name string) string {
	return s.reg.lookup("", "v1", "namespaces").key("", name)
}

// checkNamespace makes sure objects can be created in ns: it exists and is
// not being deleted.
func (s *Server) checkNamespace(ctx context.Context, ns string) error {
	key := s.namespaceKey(ns)
	kv, _, err := s.store.Get(ctx, key, raftstore.ReadOptions{})
	if err == nil && kv == nil {
		// Maybe this replica is behind a namespace created elsewhere.
		kv, _, err = s.store.Get(ctx, key, raftstore.ReadOptions{Linearizable: true})
	}
	if err != nil {
		return storeError(err)
	}
	if kv == nil {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), ns)
	}
	var nsObj struct {
		Metadata struct {
			DeletionTimestamp *metav1.Time `json:"deletionTimestamp"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(kv.Value, &nsObj); err == nil && nsObj.Metadata.DeletionTimestamp != nil {
		return apierrors.NewForbidden(corev1.Resource("namespaces"), ns,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res := ri.resource
	fv, err := fieldValidation(r)
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, warnings, err := decodeRequestObject(r, res, body, fv)
	if err != nil {
		writeError(w, err)
		return
	}
	if obj.GetResourceVersion() != "" {
		writeError(w, badRequest("metadata.resourceVersion should not be set on objects to be created"))
		return
	}
	if res.namespaced {
		if ns := obj.GetNamespace(); ns != "" && ns != ri.namespace {
			writeError(w, badRequest("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)", ns, ri.namespace))
			return
		}
		obj.SetNamespace(ri.namespace)
	} else if obj.GetNamespace() != "" {
		writeError(w, badRequest("%s is cluster-scoped: metadata.namespace must be empty, not %q", res.kind, obj.GetNamespace()))
		return
	}
	generated := obj.GetName() == "" && obj.GetGenerateName() != ""
	if generated {
		obj.SetName(obj.GetGenerateName() + utilrand.String(5))
	}
	s.prepareCreate(res, obj)
	applyDefaults(obj)
	finishCreate(obj)
	if errs := validateCreate(obj); len(errs) > 0 {
		writeError(w, apierrors.NewInvalid(res.gvk().GroupKind(), obj.GetName(), errs))
		return
	}
	warnings = append(warnings, unsupportedFields(obj)...)
	addWarnings(w, warnings)
	if res.namespaced {
		if err := s.checkNamespace(ctx, ri.namespace); err != nil {
			writeError(w, err)
			return
		}
	}
	for attempt := 0; ; attempt++ {
		alloc, err := s.allocationsFor(ctx, obj, nil, false)
		if err != nil {
			writeError(w, err)
			return
		}
		stored, err := encodeForStore(res, obj)
		if err != nil {
			writeError(w, apierrors.NewInternalError(err))
			return
		}
		if dry {
			writeJSON(w, http.StatusCreated, stored)
			return
		}
		key := res.key(obj.GetNamespace(), obj.GetName())
		txn := &raftstore.Txn{Compares: []raftstore.Compare{{Key: key, ModRevision: raftstore.Absent}}, Ops: []raftstore.Op{{Type: raftstore.OpPut, Key: key, Value: stored}}}
		if res.namespaced {
			txn.Compares = append(txn.Compares, raftstore.Compare{Key: s.namespaceKey(ri.namespace), ModRevision: raftstore.Present})
		}
		alloc.addTo(txn)
		out, err := s.storeTxn(ctx, txn)
		if err != nil {
			writeError(w, storeError(err))
			return
		}
		if isAlloc, err := alloc.failed(out.FailedCompare); isAlloc {
			if err == nil && attempt < maxAllocAttempts {
				// Another write took a value this one picked: pick again.
				alloc.resetPicks()
				continue
			}
			if err == nil {
				err = apierrors.NewConflict(res.gr(), obj.GetName(), fmt.Errorf("too many concurrent allocations; try again"))
			}
			writeError(w, err)
			return
		}
		switch {
		case out.Succeeded:
			writeWritten(w, r, http.StatusCreated, newWritten(stored, obj, out.Revision))
			return
		case out.FailedCompare == 1:
			writeError(w, apierrors.NewNotFound(corev1.Resource("namespaces"), ri.namespace))
			return
		case generated && attempt < 5:
			alloc.resetPicks()
			obj.SetName(obj.GetGenerateName() + utilrand.String(5))
			continue
		}
		writeError(w, apierrors.NewAlreadyExists(res.gr(), obj.GetName()))
		return
	}
}

// current reads an object for a read-modify-write, from the local replica
// at no older than minRev. A stale read is harmless, since the write that
// follows compares the object's revision and a loser reads again; only
// "not found" must not come from a replica that is behind, so that answer is
// confirmed with a linearizable read.
func (s *Server) current(ctx context.Context, res *resource, ns, name string, minRev int64) (*raftstore.KeyValue, object, error) {
	key := res.key(ns, name)
	kv, _, err := s.store.Get(ctx, key, raftstore.ReadOptions{MinRevision: minRev})
	if err == nil && kv == nil {
		kv, _, err = s.store.Get(ctx, key, raftstore.ReadOptions{Linearizable: true})
	}
	if err != nil {
		return nil, nil, storeError(err)
	}
	if kv == nil {
		return nil, nil, notFound(res, name)
	}
	if kv, err = s.plain(ctx, kv); err != nil {
		return nil, nil, storeError(err)
	}
	obj, err := decodeStored(res, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	return kv, obj, nil
}

func conflict(res *resource, name string) error {
	return apierrors.NewConflict(res.gr(), name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
}

// updateFunc turns the current object into the desired one. It returns the
// object to write, or an error for the client.
type updateFunc func(cur object) (object, []string, error)

// written is an object as a write left it: its JSON with resourceVersion
// and the typed object, for protobuf answers.
type written struct {
	data []byte
	obj  object
}

func newWritten(data []byte, obj object, rev int64) *written {
	obj.SetResourceVersion(revString(rev))
	return &written{data: withRV(data, rev), obj: obj}
}

// guaranteedUpdate applies fn to the current object and writes the result
// with a compare on the current revision, retrying when another writer got
// there first and the request carried no resourceVersion precondition. It
// returns the object as written and the warnings. An update that empties
// the finalizers of an object being deleted deletes it.
func (s *Server) guaranteedUpdate(ctx context.Context, res *resource, ns, name string, preconditionRV int64, dry bool, fn updateFunc) (*written, []string, error) {
	minRev := preconditionRV
	for attempt := 0; attempt < 20; attempt++ {
		kv, cur, err := s.current(ctx, res, ns, name, minRev)
		if err != nil {
			return nil, nil, err
		}
		if preconditionRV > 0 && kv.ModRevision != preconditionRV {
			return nil, nil, conflict(res, name)
		}
		obj, warnings, err := fn(cur)
		if err != nil {
			return nil, nil, err
		}
		alloc, err := s.allocationsFor(ctx, obj, cur, finalized(obj))
		if err != nil {
			return nil, nil, err
		}
		stored, err := encodeForStore(res, obj)
		if err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		if bytes.Equal(stored, kv.Value) {
			// Nothing changed: no write, no new resourceVersion.
			return newWritten(kv.Value, obj, kv.ModRevision), warnings, nil
		}
		if dry {
			return newWritten(stored, obj, kv.ModRevision), warnings, nil
		}
		key := res.key(ns, name)
		op := raftstore.Op{Type: raftstore.OpPut, Key: key, Value: stored}
		if finalized(obj) {
			op = raftstore.Op{Type: raftstore.OpDelete, Key: key}
		}
		txn := &raftstore.Txn{Compares: []raftstore.Compare{{Key: key, ModRevision: kv.ModRevision}}, Ops: []raftstore.Op{op}}
		alloc.addTo(txn)
		out, err := s.storeTxn(ctx, txn)
		if err != nil {
			return nil, nil, storeError(err)
		}
		if out.Succeeded {
			return newWritten(stored, obj, out.Revision), warnings, nil
		}
		if isAlloc, err := alloc.failed(out.FailedCompare); isAlloc {
			if err != nil {
				return nil, nil, err
			}
			// Another write took a value this one picked: pick again.
			minRev = out.Revision
			continue
		}
		if preconditionRV > 0 {
			return nil, nil, conflict(res, name)
		}
		minRev = out.Revision
	}
	return nil, nil, apierrors.NewConflict(res.gr(), name, fmt.Errorf("too many concurrent writers; try again"))
}

// finalized reports whether an object being deleted has no finalizers left
// (and no grace period running), so the update that emptied them removes it.
func finalized(obj object) bool {
	if obj.GetDeletionTimestamp() == nil || len(obj.GetFinalizers()) > 0 {
		return false
	}
	if g := obj.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	return true
}

// update validates obj as the new state of cur and returns it ready to
// store.
func (s *Server) update(res *resource, obj, cur object, subresource string) (object, []string, error) {
	if obj.GetResourceVersion() == "" {
		// An unconditional update applies to the stored version.
		obj.SetResourceVersion(cur.GetResourceVersion())
	}
	prepareUpdate(res, obj, cur, subresource)
	applyDefaults(obj)
	bumpGeneration(res, obj, cur)
	if errs := validateUpdate(obj, cur); len(errs) > 0 {
		return nil, nil, apierrors.NewInvalid(res.gvk().GroupKind(), obj.GetName(), errs)
	}
	return obj, unsupportedFields(obj), nil
}

// checkIdentity makes sure a body names the object of the URL.
func checkIdentity(ri *requestInfo, obj object) error {
	if obj.GetName() != "" && obj.GetName() != ri.name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", obj.GetName(), ri.name)
	}
	obj.SetName(ri.name)
	if ri.resource.namespaced {
		if ns := obj.GetNamespace(); ns != "" && ns != ri.namespace {
			return badRequest("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)", ns, ri.namespace)
		}
		obj.SetNamespace(ri.namespace)
	}
	return nil
}

func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res := ri.resource
	fv, err := fieldValidation(r)
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, warnings, err := decodeRequestObject(r, res, body, fv)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkIdentity(ri, obj); err != nil {
		writeError(w, err)
		return
	}
	var precondition int64
	if rv := obj.GetResourceVersion(); rv != "" {
		n, ok := parseRV(rv)
		if !ok {
			writeError(w, badRequest("metadata.resourceVersion %q is not a valid resource version", rv))
			return
		}
		precondition = n
	}
	out, more, err := s.guaranteedUpdate(ctx, res, ri.namespace, ri.name, precondition, dry, func(cur object) (object, []string, error) {
		// Each attempt starts from the request's object as sent.
		return s.update(res, obj.DeepCopyObject().(object), cur, ri.subresource)
	})
	if err != nil {
		writeError(w, err)
		return
	}
	addWarnings(w, append(warnings, more...))
	writeWritten(w, r, http.StatusOK, out)
}
