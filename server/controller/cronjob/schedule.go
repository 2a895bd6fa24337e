package cronjob

import (
	"errors"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// exactWalk is how many schedule times are walked one by one; beyond it
// the count of missed times is estimated, as Kubernetes does, so a
// CronJob suspended for a year on "* * * * *" costs no more to sync than
// one suspended for a day.
const exactWalk = 1000

// errTooFrequent is the error of a schedule whose times come less than a
// second apart, or never advance.
var errTooFrequent = errors.New("cronjob: schedule times are less than a second apart")

// parseSchedule parses a CronJob's schedule in its time zone with the
// parser Kubernetes uses: five fields, or a descriptor (@hourly, @daily,
// @weekly, @monthly, @yearly, @annually, @midnight, @every DURATION).
func parseSchedule(cj *batchv1.CronJob) (cron.Schedule, error) {
	s := cj.Spec.Schedule
	if tz := cj.Spec.TimeZone; tz != nil && *tz != "" {
		s = "TZ=" + *tz + " " + s
	}
	return cron.ParseStandard(s)
}

// mostRecent is the latest schedule time in (earliest, now], zero if there
// is none, and how many schedule times that interval holds (exact up to
// exactWalk, estimated beyond).
func mostRecent(sched cron.Schedule, earliest, now time.Time) (time.Time, int64, error) {
	t1 := sched.Next(earliest)
	if t1.IsZero() || t1.After(now) {
		return time.Time{}, 0, nil
	}
	t2 := sched.Next(t1)
	if t2.IsZero() || t2.After(now) {
		return t1, 1, nil
	}
	step := t2.Sub(t1).Round(time.Second)
	if step < time.Second {
		return time.Time{}, 0, errTooFrequent
	}
	estimate := int64(now.Sub(t1)/step) + 1
	if estimate <= exactWalk {
		last, n := walk(sched, t1, now)
		return last, n, nil
	}
	// Start well before now, then walk to it. For very irregular
	// schedules the start may overshoot the latest time; walk it all then.
	last, _ := walk(sched, sched.Next(t1.Add(time.Duration(estimate-exactWalk)*step)), now)
	if last.IsZero() {
		last, _ = walk(sched, t1, now)
	}
	return last, estimate, nil
}

// walk follows the schedule from the schedule time first to now,
// returning the last time reached and the count.
func walk(sched cron.Schedule, first, now time.Time) (time.Time, int64) {
	var last time.Time
	var n int64
	for t := first; !t.IsZero() && !t.After(now); t = sched.Next(t) {
		last = t
		n++
	}
	return last, n
}

// nextDelay is how long until the schedule time after the latest one
// that passed (or after earliest), plus a little so the sync then finds
// that time passed.
func nextDelay(sched cron.Schedule, earliest, now time.Time) time.Duration {
	from := earliest
	if last, _, err := mostRecent(sched, earliest, now); err != nil {
		from = now
	} else if !last.IsZero() {
		from = last
	}
	next := sched.Next(from)
	if next.IsZero() {
		return 0 // the schedule never fires again
	}
	return max(next.Add(100*time.Millisecond).Sub(now), time.Millisecond)
}
