package peerauth

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestHandshake(t *testing.T) {
	cases := []struct {
		name       string
		clientTok  string
		serverTok  string
		wantDenied bool
	}{
		{name: "same token", clientTok: "s3cret", serverTok: "s3cret"},
		{name: "wrong token", clientTok: "guess", serverTok: "s3cret", wantDenied: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			a, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			b, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				conn net.Conn
				err  error
			}
			srv := make(chan result, 1)
			go func() {
				c, err := Server(b, Key(tc.serverTok), 5*time.Second)
				srv <- result{c, err}
			}()
			cc, cerr := Client(a, Key(tc.clientTok), 5*time.Second)
			sr := <-srv
			if tc.wantDenied {
				if sr.err == nil || !errors.Is(sr.err, ErrDenied) {
					t.Fatalf("server: got err %v, want ErrDenied", sr.err)
				}
				if cerr == nil {
					t.Fatalf("client: got nil error, want a failure")
				}
				return
			}
			if cerr != nil || sr.err != nil {
				t.Fatalf("got client err %v, server err %v, want none", cerr, sr.err)
			}
			defer cc.Close()
			defer sr.conn.Close()
			go func() { _, _ = cc.Write([]byte("ping")) }()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(sr.conn, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("got %q, %v, want ping", buf, err)
			}
		})
	}
}
