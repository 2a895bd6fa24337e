package dns_test

import (
	"context"
	"fmt"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"orch.dev/orch/dns"
)

// A server answering from an index fed by hand; in orch the index comes
// from dns.NewIndexFromInformers(factory).
func ExampleServer() {
	idx := dns.NewIndex()
	idx.UpsertService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.43.0.10"},
	})
	srv := &dns.Server{Config: dns.Config{Addr: "127.0.0.1:0", NoForward: true}, Index: idx}
	if err := srv.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()

	q := new(mdns.Msg)
	q.SetQuestion("hello.default.svc.cluster.local.", mdns.TypeA)
	m, err := mdns.Exchange(q, srv.Addr())
	if err != nil {
		fmt.Println(err)
	} else {
		fmt.Println(m.Answer[0])
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Println(err)
	}
	// Output: hello.default.svc.cluster.local.	5	IN	A	10.43.0.10
}
