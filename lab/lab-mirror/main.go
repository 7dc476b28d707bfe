// Command lab-mirror serves the lab's package mirror: the files under a
// folder, over HTTPS, read-only, with one log line per request.
//
//	lab-mirror -listen 172.30.0.1:8443 -cert tls.crt -key tls.key ROOT
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to listen on (host:port)")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS private key (PEM)")
	flag.Parse()
	if *listen == "" || *cert == "" || *key == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: lab-mirror -listen HOST:PORT -cert FILE -key FILE ROOT")
		os.Exit(2)
	}
	root := flag.Arg(0)
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "lab-mirror: %s is not a folder\n", root)
		os.Exit(1)
	}
	files := http.FileServer(http.Dir(root))
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "read-only", http.StatusMethodNotAllowed)
				return
			}
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			files.ServeHTTP(rec, r)
			log.Printf("%s %s %s %d", r.RemoteAddr, r.Method, r.URL.Path, rec.status)
		}),
	}
	log.Printf("serving %s at https://%s", root, *listen)
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil {
		fmt.Fprintf(os.Stderr, "lab-mirror: %v\n", err)
		os.Exit(1)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
