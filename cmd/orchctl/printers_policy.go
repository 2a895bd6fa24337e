package main

import (
	"strconv"
	"time"

	policyv1 "k8s.io/api/policy/v1"
)

// The table of PodDisruptionBudgets, with kubectl's columns.
func init() {
	printers[policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")] = &printer{
		columns: []string{"MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"},
		row:     rowFunc(budgetRow)}
	kindsForCompletion = append(kindsForCompletion, "poddisruptionbudgets")
}

func budgetRow(b *policyv1.PodDisruptionBudget, now time.Time) (cells, wide []string) {
	minAvail, maxUnavail := "N/A", "N/A"
	if b.Spec.MinAvailable != nil {
		minAvail = b.Spec.MinAvailable.String()
	}
	if b.Spec.MaxUnavailable != nil {
		maxUnavail = b.Spec.MaxUnavailable.String()
	}
	return []string{minAvail, maxUnavail, strconv.Itoa(int(b.Status.DisruptionsAllowed)), age(b.CreationTimestamp, now)}, nil
}
