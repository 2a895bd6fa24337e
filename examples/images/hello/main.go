// Command hello is the example application image orch/hello:dev, and the
// tests' workhorse: a small HTTP server plus a few client modes, static so
// it runs in an image built from scratch.
//
//	hello [serve]             serve HTTP on $PORT (default 8080)
//	hello fetch URL           print URL's body; retry up to 10 s; exit 1 on failure
//	hello cat                 copy stdin to stdout
//	hello env                 print the environment
//	hello exit CODE [DELAY]   sleep DELAY (default 0), then exit with CODE
//	hello udp ADDR [COUNT]    send COUNT (default 1) datagrams to ADDR, each
//	                          from a new socket, and print each answer
//	hello load URL[,URL...] DURATION CONCURRENCY
//	                          GET URL for DURATION from CONCURRENCY workers,
//	                          each request on a new connection (several URLs
//	                          in turn), and print one line of key=value
//	                          results (see load)
//
// The server answers GET / with its host name and the pod's environment,
// GET /healthz (200, or 500 after POST /fail), GET /readyz (200, or 503
// after POST /ready?state=false), and POST /exit?code=N by exiting with N.
// It also answers every UDP datagram on the same port with its host name
// and the sender's address ("udp from HOST peer IP:PORT").
// On SIGTERM it exits 0 after $TERM_DELAY (default 0), so tests can watch a
// grace period run out.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	mode := "serve"
	if len(args) > 0 {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "serve":
		serve()
	case "fetch":
		if len(args) != 1 {
			fail("usage: hello fetch URL")
		}
		fetch(args[0])
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fail(err.Error())
		}
	case "env":
		env := os.Environ()
		sort.Strings(env)
		fmt.Println(strings.Join(env, "\n"))
	case "exit":
		if len(args) < 1 {
			fail("usage: hello exit CODE [DELAY]")
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			fail("exit code: " + err.Error())
		}
		if len(args) > 1 {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				fail("delay: " + err.Error())
			}
			time.Sleep(d)
		}
		fmt.Printf("exiting with %d\n", code)
		os.Exit(code)
	case "udp":
		if len(args) < 1 {
			fail("usage: hello udp ADDR [COUNT]")
		}
		count := 1
		if len(args) > 1 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				fail("count: " + err.Error())
			}
			count = n
		}
		udpClient(args[0], count)
	case "load":
		if len(args) != 3 {
			fail("usage: hello load URL[,URL...] DURATION CONCURRENCY")
		}
		d, err := time.ParseDuration(args[1])
		if err != nil || d <= 0 {
			fail("duration: want a positive duration such as 10s")
		}
		conc, err := strconv.Atoi(args[2])
		if err != nil || conc < 1 || conc > 10000 {
			fail("concurrency: want an integer from 1 to 10000")
		}
		load(strings.Split(args[0], ","), d, conc)
	default:
		fail("unknown mode " + mode + " (serve, fetch, cat, env, exit, udp, load)")
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "hello:", msg)
	os.Exit(2)
}

func fetch(url string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Print(string(body))
			if resp.StatusCode >= 400 {
				os.Exit(1)
			}
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "hello: fetch:", err)
			os.Exit(1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func serve() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var unhealthy, notReady atomic.Bool
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		greeting := os.Getenv("GREETING")
		if greeting == "" {
			greeting = "Hello"
		}
		fmt.Fprintf(w, "%s from %s\n", greeting, host)
		for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "POD_IP", "NODE_NAME"} {
			if v := os.Getenv(k); v != "" {
				fmt.Fprintf(w, "%s=%s\n", k, v)
			}
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy.Load() {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if notReady.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		unhealthy.Store(true)
		fmt.Fprintln(w, "healthz now fails")
	})
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) {
		notReady.Store(r.URL.Query().Get("state") == "false")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code must be an integer", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "exiting with %d\n", code)
		go func() {
			time.Sleep(50 * time.Millisecond)
			os.Exit(code)
		}()
	})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		if d, err := time.ParseDuration(os.Getenv("TERM_DELAY")); err == nil {
			time.Sleep(d)
		}
		os.Exit(0)
	}()
	go serveUDP(port, host)
	fmt.Printf("hello listening on :%s\n", port)
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fail(err.Error())
	}
}

// serveUDP answers each datagram with the host name and the sender's
// address, so tests can see whether traffic was NATed.
func serveUDP(port, host string) {
	pc, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello: udp:", err)
		return
	}
	buf := make([]byte, 2048)
	for {
		_, addr, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		_, _ = pc.WriteTo([]byte("udp from "+host+" peer "+addr.String()+"\n"), addr)
	}
}

func udpClient(addr string, count int) {
	for range count {
		c, err := net.Dial("udp", addr)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2048)
		if _, err = c.Write([]byte("hello\n")); err == nil {
			var n int
			if n, err = c.Read(buf); err == nil {
				fmt.Print(string(buf[:n]))
			}
		}
		if err != nil {
			fmt.Println("error:", err)
		}
		c.Close()
	}
}

// load GETs urls, each worker taking them in turn, from conc workers until
// d has passed. Keep-alives are off:
// every request opens a new TCP connection, so each one goes through
// connection set-up (and, in a cluster, through the service proxy's NAT and
// a new conntrack entry) again. It prints one line:
//
//	load requests=N errors=N seconds=S rps=R p50_ms=X p99_ms=Y backends=a:N,b:N
//
// where backends counts the host names in the answers' first lines
// ("... from HOST"). It exits 1 if no request succeeded.
func load(urls []string, d time.Duration, conc int) {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
		},
	}
	type result struct {
		lat      []time.Duration
		errors   int
		backends map[string]int
		lastErr  error
	}
	results := make([]result, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			r.backends = map[string]int{}
			for n := 0; time.Now().Before(deadline); n++ {
				t0 := time.Now()
				resp, err := client.Get(urls[n%len(urls)])
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode >= 400 {
						err = fmt.Errorf("status %s", resp.Status)
					}
					if err == nil {
						first, _, _ := strings.Cut(string(body), "\n")
						if _, host, ok := strings.Cut(first, " from "); ok {
							r.backends[host]++
						}
					}
				}
				if err != nil {
					r.errors++
					r.lastErr = err
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
			}
		}(&results[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lat []time.Duration
	errs := 0
	backends := map[string]int{}
	var lastErr error
	for _, r := range results {
		lat = append(lat, r.lat...)
		errs += r.errors
		if r.lastErr != nil {
			lastErr = r.lastErr
		}
		for k, v := range r.backends {
			backends[k] += v
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
	var names []string
	for k := range backends {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = fmt.Sprintf("%s:%d", k, backends[k])
	}
	fmt.Printf("load requests=%d errors=%d seconds=%.2f rps=%.1f p50_ms=%.3f p99_ms=%.3f backends=%s\n",
		len(lat), errs, elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), pct(0.50), pct(0.99), strings.Join(names, ","))
	if lastErr != nil {
		fmt.Fprintln(os.Stderr, "hello: load: last error:", lastErr)
	}
	if len(lat) == 0 {
		os.Exit(1)
	}
}
