// Command e2eweb is the lab end-to-end test's workload, built by the test
// into a one-file image:
//
//	e2eweb serve ADDR      answer every HTTP request with this pod's hostname;
//	                       on SIGTERM go on answering for 5 s (while the pod
//	                       leaves the Service's endpoints), then stop
//	e2eweb get URL WANT    GET URL until WANT different hostnames answered
//	                       (at most 2 minutes), printing each one
//	e2eweb poll URL        GET URL every 100 ms forever (its name resolved
//	                       first, within 1 s), printing each failure, "dns:"
//	                       or "http:", and, every 5 s, "total N failed M"
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: e2eweb serve ADDR | e2eweb get URL WANT | e2eweb poll URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, host) })
		srv := &http.Server{Addr: os.Args[2], ReadHeaderTimeout: 10 * time.Second}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			time.Sleep(5 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	case "poll":
		poll(os.Args[2])
	case "get":
		want, err := strconv.Atoi(os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(get(os.Args[2], want))
	}
	os.Exit(2)
}

func poll(rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	total, failed := 0, 0
	last := time.Now()
	for {
		total++
		// The name first, on its own clock, so that a failure says
		// whether DNS or the Service's backend failed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
		cancel()
		if err != nil {
			err = fmt.Errorf("dns: %w", err)
		} else {
			req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(addrs[0], port)+u.RequestURI(), nil)
			req.Host = u.Host
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			if err != nil {
				err = fmt.Errorf("http: %w", err)
			}
		}
		if err != nil {
			failed++
			fmt.Println(time.Now().UTC().Format(time.RFC3339), "failed:", err)
		}
		if time.Since(last) >= 5*time.Second {
			fmt.Println("total", total, "failed", failed)
			last = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string, want int) int {
	// New connections each time, so the Service spreads them over pods.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := map[string]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(seen) < want {
		if time.Now().After(deadline) {
			fmt.Printf("saw %d of %d backends before the deadline\n", len(seen), want)
			return 1
		}
		resp, err := client.Get(url)
		if err != nil {
			fmt.Println("error:", err)
			time.Sleep(time.Second)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if h := strings.TrimSpace(string(b)); h != "" && !seen[h] {
			seen[h] = true
			fmt.Println("answered by", h)
		}
	}
	return 0
}
