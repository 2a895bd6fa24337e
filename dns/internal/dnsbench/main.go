// Command dnsbench serves a cluster zone of synthetic Services for load
// tests of the DNS server (scripts/dnsperf.sh). It is not part of orchd.
//
//	go run ./dns/internal/dnsbench -addr 127.0.0.1:5300 -services 1000 -queries /tmp/q.txt
//
// The names are svc-<i>.default.svc.cluster.local (ClusterIP
// 10.43.<i/250>.<i%250+1>, port "http" 80/TCP). With -queries it writes a
// dnsperf query file asking each name's A record. It serves until SIGINT
// or SIGTERM; -cpuprofile writes a CPU profile of that time.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/dns"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:5300", "UDP and TCP address to serve on")
	n := flag.Int("services", 1000, "number of services")
	queries := flag.String("queries", "", "write a dnsperf query file here")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()

	x := dns.NewIndex()
	for i := range *n {
		x.UpsertService(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("svc-%d", i)},
			Spec: corev1.ServiceSpec{
				ClusterIP: fmt.Sprintf("10.43.%d.%d", i/250, i%250+1),
				Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
			},
		})
	}
	if *queries != "" {
		if err := writeQueries(*queries, *n); err != nil {
			return err
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &dns.Server{Config: dns.Config{Addr: *addr, NoForward: true, Logger: slog.Default()}, Index: x}
	if err := s.Listen(); err != nil {
		return err
	}
	slog.Info("serving", "addr", s.Addr(), "services", *n)
	return s.Serve(ctx)
}

func writeQueries(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "svc-%d.default.svc.cluster.local A\n", i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
