// Package gossip is the membership pool every server (and later every
// agent) joins, over hashicorp/memberlist. Gossip is encrypted with a key
// derived from the cluster token, so only token holders are members. Each
// member advertises a small JSON meta: its role and the addresses others
// need to reach it.
package gossip

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"orch.dev/orch/internal/logging"
)

// Meta is what a member advertises. It must stay small (memberlist allows
// 512 bytes).
type Meta struct {
	Role string `json:"r"` // "server" or "agent"
	// Raft and API are the server's peer and API addresses.
	Raft string `json:"ra,omitempty"`
	API  string `json:"a,omitempty"`
	// Expect is the server's --bootstrap-expect (0 when joining).
	Expect int `json:"e,omitempty"`
	// Bootstrapped is true once the server belongs to a Raft cluster.
	Bootstrapped bool `json:"b,omitempty"`
}

// Member is one member of the pool as this process sees it.
type Member struct {
	Name  string
	Addr  string // gossip address
	State string // "alive", "suspect", "dead" or "left"
	Meta  Meta
}

// Config configures a Pool.
type Config struct {
	Name string
	// BindAddr is host:port to listen on (TCP and UDP); port 0 picks one.
	BindAddr string
	// AdvertiseIP is the address others reach this member at; empty: the
	// bind address.
	AdvertiseIP string
	// Key encrypts gossip (16, 24 or 32 bytes).
	Key    []byte
	Meta   Meta
	Logger *slog.Logger
	// ProbeInterval is how often each member probes another (default
	// 800 ms); a probe fails when neither a direct nor an indirect ack comes
	// back within the interval (the direct ack has half of it). A member
	// whose probe failed is suspect, and is declared dead after
	// SuspicionMult probe intervals (default 2, scaled up by memberlist in
	// big pools) unless it refutes the suspicion. A stopped member is thus
	// dead 1.6 to 3.2 s after it stops. A busy member stays alive as long
	// as it acks within 400 ms or refutes within the suspicion time; a
	// member that is itself struggling probes more patiently (memberlist's
	// Lifeguard awareness).
	ProbeInterval time.Duration
	SuspicionMult int
}

// Gossip timing defaults; see Config.
const (
	DefaultProbeInterval = 800 * time.Millisecond
	DefaultSuspicionMult = 2
)

// Pool is this process's membership in the gossip pool.
type Pool struct {
	ml  *memberlist.Memberlist
	log *slog.Logger

	mu     sync.Mutex
	meta   []byte
	notify chan struct{}
	// members is this process's copy of the membership, kept from
	// memberlist's event callbacks: the nodes memberlist hands out are
	// updated under its own lock, so they must not be read later.
	members map[string]Member
}

// Start joins nothing yet: it starts listening and returns the pool; call
// Join to meet others.
func Start(cfg Config) (*Pool, error) {
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind port %q: %w", portStr, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard
	}
	p := &Pool{log: cfg.Logger, notify: make(chan struct{}), members: map[string]Member{}}
	if p.meta, err = encodeMeta(cfg.Meta); err != nil {
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseIP != "" {
		mc.AdvertiseAddr = cfg.AdvertiseIP
	}
	mc.SecretKey = cfg.Key
	mc.ProbeInterval = DefaultProbeInterval
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	mc.ProbeTimeout = mc.ProbeInterval / 2
	mc.SuspicionMult = DefaultSuspicionMult
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.Logger = logging.Std(cfg.Logger, "memberlist")
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start on %s: %w", cfg.BindAddr, err)
	}
	p.ml = ml
	return p, nil
}

func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip: meta of %d bytes exceeds %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// Addr returns the address others gossip with this member at.
func (p *Pool) Addr() string {
	n := p.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Join contacts the given members; it succeeds when at least one answers.
func (p *Pool) Join(addrs []string) (int, error) {
	return p.ml.Join(addrs)
}

// SetMeta changes what this member advertises and spreads it.
func (p *Pool) SetMeta(m Meta) error {
	b, err := encodeMeta(m)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.meta = b
	p.mu.Unlock()
	return p.ml.UpdateNode(5 * time.Second)
}

// Members returns the members this process knows, alive or suspect, sorted
// by name.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	out := make([]Member, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, m)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// record copies a node's state into the membership; memberlist calls the
// event delegate with the node under its lock.
func (p *Pool) record(n *memberlist.Node, gone bool) {
	m := Member{Name: n.Name, Addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), State: stateName(n.State)}
	if err := json.Unmarshal(n.Meta, &m.Meta); err != nil {
		p.log.Debug("member with unreadable meta", "member", n.Name, "err", err)
	}
	p.mu.Lock()
	if gone {
		delete(p.members, n.Name)
	} else {
		p.members[n.Name] = m
	}
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// Changed returns a channel closed at the next membership change.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notify
}

// Leave tells the others this member is going, then stops.
func (p *Pool) Leave(timeout time.Duration) error {
	err := p.ml.Leave(timeout)
	if serr := p.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops without telling anyone, as a crash would.
func (p *Pool) Shutdown() error { return p.ml.Shutdown() }

type delegate Pool

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events Pool

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.log.Info("gossip member joined", "member", n.Name, "addr", n.Address())
	(*Pool)(e).record(n, false)
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.log.Info("gossip member left or failed", "member", n.Name)
	(*Pool)(e).record(n, true)
}

func (e *events) NotifyUpdate(n *memberlist.Node) { (*Pool)(e).record(n, false) }
