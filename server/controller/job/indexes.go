package job

import (
	"strconv"
	"strings"
)

// interval is the completion indexes first..last.
type interval struct{ first, last int }

// intervals is a set of completion indexes as sorted, disjoint,
// non-adjacent intervals, the form of status.completedIndexes.
type intervals []interval

// parseIntervals reads a completedIndexes string ("1,3-5,7"), keeping the
// indexes below completions. Malformed parts are skipped.
func parseIntervals(s string, completions int) intervals {
	var x intervals
	if s == "" {
		return x
	}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(a)
		if err != nil || first < 0 {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(b); err != nil || last < first {
				continue
			}
		}
		if first >= completions {
			continue
		}
		x = x.addRange(first, min(last, completions-1))
	}
	return x
}

// addRange is x with a..b added.
func (x intervals) addRange(a, b int) intervals {
	out := make(intervals, 0, len(x)+1)
	placed := false
	for _, iv := range x {
		switch {
		case iv.last+1 < a:
			out = append(out, iv)
		case b+1 < iv.first:
			if !placed {
				out = append(out, interval{a, b})
				placed = true
			}
			out = append(out, iv)
		default:
			a, b = min(a, iv.first), max(b, iv.last)
		}
	}
	if !placed {
		out = append(out, interval{a, b})
	}
	return out
}

func (x intervals) add(ix int) intervals { return x.addRange(ix, ix) }

func (x intervals) has(ix int) bool {
	for _, iv := range x {
		if ix < iv.first {
			return false
		}
		if ix <= iv.last {
			return true
		}
	}
	return false
}

// total is the number of indexes in x.
func (x intervals) total() int {
	n := 0
	for _, iv := range x {
		n += iv.last - iv.first + 1
	}
	return n
}

// String writes x as Kubernetes does: "0-2,4", with two adjacent indexes
// as "5,6".
func (x intervals) String() string {
	var b strings.Builder
	for _, iv := range x {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(iv.first))
		switch {
		case iv.last == iv.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(iv.last))
		case iv.last > iv.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(iv.last))
		}
	}
	return b.String()
}

// pendingIndexes are the first n indexes below completions that neither
// succeeded nor are held by a pod.
func pendingIndexes(n, completions int, done intervals, held map[int]bool) []int {
	var out []int
	k := 0
	for ix := 0; ix < completions && len(out) < n; ix++ {
		for k < len(done) && done[k].last < ix {
			k++
		}
		if k < len(done) && done[k].first <= ix {
			ix = done[k].last
			continue
		}
		if !held[ix] {
			out = append(out, ix)
		}
	}
	return out
}
