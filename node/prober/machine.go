package prober

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Kind is a probe's role.
type Kind string

// Probe kinds, named as in events ("Liveness probe failed: ...").
const (
	Startup   Kind = "Startup"
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
)

// EventInterval is the least time between two Unhealthy events about the
// same probe of a container, unless its result flips: a probe failing every
// period would otherwise write an event each time.
const EventInterval = time.Minute

// Probes are a container's probes; nil ones are not set.
type Probes struct {
	Startup, Liveness, Readiness *corev1.Probe
}

// ProbesOf returns a container's probes.
func ProbesOf(c *corev1.Container) Probes {
	return Probes{Startup: c.StartupProbe, Liveness: c.LivenessProbe, Readiness: c.ReadinessProbe}
}

// Any reports whether any probe is set.
func (p Probes) Any() bool { return p.Startup != nil || p.Liveness != nil || p.Readiness != nil }

// Status is what a container's probes say now.
type Status struct {
	// Started is true once the startup probe has passed (at once without
	// one); liveness and readiness probes run only then.
	Started bool
	// Ready is true when the container is started and its readiness probe
	// passes (at once without one).
	Ready bool
	// Kill, when set, says the container failed its liveness or startup
	// probe and must be restarted. No probe runs after that.
	Kill *Kill
}

// Kill is the decision to restart a container that failed a probe.
type Kill struct {
	Kind    Kind
	Message string // the last failure
	// Grace is the probe's terminationGracePeriodSeconds, when set; it
	// replaces the pod's for this kill.
	Grace *time.Duration
}

// Change is what one recorded result changed.
type Change struct {
	// Status is true when Started, Ready or Kill changed.
	Status bool
	// Event, when set, is the message of an Unhealthy event to record
	// ("Readiness probe failed: ...").
	Event string
}

// probeState follows one probe's results.
type probeState struct {
	kind      Kind
	spec      corev1.Probe // with the defaults filled in
	next      time.Time    // when it is due
	passing   bool         // the result that counts, once a threshold was reached
	decided   bool         // passing holds a result (a startup probe has none at first)
	last      *bool        // the previous result, for counting runs
	run       int          // consecutive results equal to last
	lastEvent time.Time
}

// Machine is one container's probe state. It is not safe for concurrent
// use; Manager guards it.
type Machine struct {
	probes  []*probeState // startup, liveness, readiness; only those set
	started bool
	kill    *Kill
}

// withDefaults fills the fields the API defaults, for probes written
// without them (objects from before defaulting, tests).
func withDefaults(p *corev1.Probe) corev1.Probe {
	out := *p
	if out.PeriodSeconds <= 0 {
		out.PeriodSeconds = 10
	}
	if out.TimeoutSeconds <= 0 {
		out.TimeoutSeconds = 1
	}
	if out.SuccessThreshold <= 0 {
		out.SuccessThreshold = 1
	}
	if out.FailureThreshold <= 0 {
		out.FailureThreshold = 3
	}
	if out.InitialDelaySeconds < 0 {
		out.InitialDelaySeconds = 0
	}
	return out
}

// NewMachine returns the state of a container that started at startedAt.
// Before any result, a container is alive, not ready, and started only
// without a startup probe.
func NewMachine(p Probes, startedAt time.Time) *Machine {
	m := &Machine{started: p.Startup == nil}
	for _, s := range []struct {
		kind Kind
		spec *corev1.Probe
	}{{Startup, p.Startup}, {Liveness, p.Liveness}, {Readiness, p.Readiness}} {
		if s.spec == nil {
			continue
		}
		spec := withDefaults(s.spec)
		m.probes = append(m.probes, &probeState{
			kind: s.kind, spec: spec,
			next:    startedAt.Add(time.Duration(spec.InitialDelaySeconds) * time.Second),
			passing: s.kind == Liveness, // alive until proven otherwise
			decided: s.kind != Startup,  // not ready until proven otherwise
		})
	}
	return m
}

func (m *Machine) probe(k Kind) *probeState {
	for _, p := range m.probes {
		if p.kind == k {
			return p
		}
	}
	return nil
}

// Spec returns the probe of a kind, with its defaults, or nil.
func (m *Machine) Spec(k Kind) *corev1.Probe {
	if p := m.probe(k); p != nil {
		s := p.spec
		return &s
	}
	return nil
}

// Status returns what the probes say now.
func (m *Machine) Status() Status {
	st := Status{Started: m.started, Kill: m.kill}
	st.Ready = m.started && m.kill == nil
	if r := m.probe(Readiness); r != nil {
		st.Ready = st.Ready && r.passing
	}
	return st
}

// active reports whether a probe runs at all in the current state: the
// startup probe until it passes, the others after it, none after a kill.
func (m *Machine) active(p *probeState) bool {
	if m.kill != nil {
		return false
	}
	if p.kind == Startup {
		return !m.started
	}
	return m.started
}

// Due lists the probes to run at now, in the order startup, liveness,
// readiness.
func (m *Machine) Due(now time.Time) []Kind {
	var out []Kind
	for _, p := range m.probes {
		if m.active(p) && !now.Before(p.next) {
			out = append(out, p.kind)
		}
	}
	return out
}

// Next returns when the next probe is due, or the zero time when none will
// run any more (a kill was decided, or nothing is left to probe).
func (m *Machine) Next() time.Time {
	var next time.Time
	for _, p := range m.probes {
		if m.active(p) && (next.IsZero() || p.next.Before(next)) {
			next = p.next
		}
	}
	return next
}

// Record applies the result of a probe started at now. Results of probes
// that are not active any more are ignored.
func (m *Machine) Record(now time.Time, k Kind, r Result) Change {
	p := m.probe(k)
	if p == nil || !m.active(p) {
		return Change{}
	}
	p.next = now.Add(time.Duration(p.spec.PeriodSeconds) * time.Second)
	if p.last != nil && *p.last == r.Success {
		p.run++
	} else {
		ok := r.Success
		p.last, p.run = &ok, 1
	}
	threshold := p.spec.FailureThreshold
	if r.Success {
		threshold = p.spec.SuccessThreshold
	}
	flipped := p.run >= int(threshold) && (!p.decided || p.passing != r.Success)
	if p.run >= int(threshold) {
		p.passing, p.decided = r.Success, true
	}
	var ch Change
	if !r.Success && (flipped || p.lastEvent.IsZero() || now.Sub(p.lastEvent) >= EventInterval) {
		p.lastEvent = now
		ch.Event = string(k) + " probe failed: " + r.Message
	}
	if !flipped {
		return ch
	}
	ch.Status = true
	switch {
	case k == Startup && r.Success:
		m.started = true
		// Liveness and readiness start now, or when their initial delay
		// (counted from the container's start) ends.
		for _, o := range m.probes {
			if o.kind != Startup && o.next.Before(now) {
				o.next = now
			}
		}
	case (k == Startup || k == Liveness) && !r.Success:
		m.kill = &Kill{Kind: k, Message: r.Message}
		if g := p.spec.TerminationGracePeriodSeconds; g != nil {
			d := time.Duration(*g) * time.Second
			m.kill.Grace = &d
		}
	}
	return ch
}
