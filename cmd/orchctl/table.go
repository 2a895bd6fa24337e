package main

import (
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// columnGap separates table columns, as in kubectl's output.
const columnGap = "   "

// tableWriter prints tables the way kubectl does: every column as wide as
// its widest cell, three spaces between columns, no trailing spaces.
// Widths only grow, so rows printed later (by get --watch) stay aligned
// with the header as long as their cells fit.
type tableWriter struct {
	w      io.Writer
	widths []int
}

// fit widens the columns to hold rows.
func (t *tableWriter) fit(rows ...[]string) {
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(t.widths) {
				t.widths = append(t.widths, 0)
			}
			if n := len([]rune(cell)); n > t.widths[i] {
				t.widths[i] = n
			}
		}
	}
}

// write prints rows, after widening the columns to fit them.
func (t *tableWriter) write(rows ...[]string) error {
	t.fit(rows...)
	var b strings.Builder
	for _, r := range rows {
		for i, cell := range r {
			cell = strings.ReplaceAll(strings.ReplaceAll(cell, "\n", " "), "\t", " ")
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-len([]rune(cell))))
				b.WriteString(columnGap)
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// age is how long ago t was, in kubectl's short form: 5s, 3m2s, 4h, 6d.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// orNone is s, or <none> when it is empty, as tables show missing values.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
