// Command e2eweb is the lab end-to-end test's workload, built by the test
// into a one-file image:
//
//	e2eweb serve ADDR      answer every HTTP request with this pod's hostname
//	e2eweb get URL WANT    GET URL until WANT different hostnames answered
//	                       (at most 2 minutes), printing each one
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: e2eweb serve ADDR | e2eweb get URL WANT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, host) })
		srv := &http.Server{Addr: os.Args[2], ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
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
