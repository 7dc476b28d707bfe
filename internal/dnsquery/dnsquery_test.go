package dnsquery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bootctl/boot/internal/route53test"
)

// zone starts the fake Route53 with zone example.com and its DNS server.
func zone(t *testing.T) *route53test.Server {
	t.Helper()
	s := route53test.Start(t)
	z := s.AddZone("ZPUB", "example.com", false)
	for _, rs := range []route53test.RecordSet{
		{Name: "dual.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.5"}},
		{Name: "dual.example.com", Type: "AAAA", TTL: 300, Values: []string{"2001:db8::5"}},
		{Name: "alias.example.com", Type: "CNAME", TTL: 300, Values: []string{"dual.example.com"}},
		{Name: "many.example.com", Type: "A", TTL: 300, Values: manyAddrs()},
	} {
		s.PutRecordSet(z, rs)
	}
	return s
}

// manyAddrs are 100 addresses, sorted.
func manyAddrs() []string {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("198.51.100.%d", i+1)
	}
	slices.Sort(many)
	return many
}

func TestLookupHost(t *testing.T) {
	s := zone(t)
	server := s.DNSAddr()
	for _, tc := range []struct {
		host    string
		want    []string
		wantErr string
	}{
		{"dual.example.com", []string{"198.51.100.5", "2001:db8::5"}, ""},
		{"Dual.Example.com.", []string{"198.51.100.5", "2001:db8::5"}, ""},
		// The fake gives the CNAME alone: no address.
		{"alias.example.com", nil, ""},
		// 100 addresses do not fit a UDP answer: they come over TCP.
		{"many.example.com", manyAddrs(), ""},
		{"missing.example.com", nil, server + " answered NXDOMAIN (no such name)"},
		{"registry.example.org", nil, server + " answered REFUSED (it does not serve that name) to the A query"},
		{"bad..name", nil, "zero length segment"},
	} {
		got, err := LookupHost(context.Background(), server, tc.host)
		slices.Sort(got)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("LookupHost(%s) = %q, %v; want an error containing %q", tc.host, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("LookupHost(%s) = %q, %v; want %q", tc.host, got, err, tc.want)
		}
	}
	if q := s.Queries(); !slices.Contains(q, "AAAA alias.example.com.") {
		t.Errorf("the server was not asked for alias.example.com's AAAA: %q", q)
	}
}

// The addresses of the names host's CNAMEs lead to count, others not.
func TestLookupHostFollowsCNAMEs(t *testing.T) {
	name := func(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }
	server := udpServer(t, func(_ int, req dnsmessage.Message) [][]byte {
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: req.ID, Response: true}, Questions: req.Questions}
		if req.Questions[0].Type == dnsmessage.TypeA {
			in := dnsmessage.ClassINET
			m.Answers = []dnsmessage.Resource{
				{Header: dnsmessage.ResourceHeader{Name: name("www.example.com."), Type: dnsmessage.TypeCNAME, Class: in}, Body: &dnsmessage.CNAMEResource{CNAME: name("Edge.Example.net.")}},
				{Header: dnsmessage.ResourceHeader{Name: name("edge.example.net."), Type: dnsmessage.TypeCNAME, Class: in}, Body: &dnsmessage.CNAMEResource{CNAME: name("lb.example.net.")}},
				{Header: dnsmessage.ResourceHeader{Name: name("lb.example.net."), Type: dnsmessage.TypeA, Class: in}, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}}},
				{Header: dnsmessage.ResourceHeader{Name: name("other.example.net."), Type: dnsmessage.TypeA, Class: in}, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 99}}},
			}
		}
		b, err := m.Pack()
		if err != nil {
			t.Error(err)
		}
		return [][]byte{b}
	})
	got, err := LookupHost(context.Background(), server, "WWW.example.com")
	if err != nil || !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Errorf("LookupHost = %q, %v; want [192.0.2.7], reached through two CNAMEs", got, err)
	}
}

// udpServer answers DNS queries on a loopback UDP port with handle's
// datagrams (none: the query is dropped) and returns its address.
func udpServer(t *testing.T, handle func(n int, req dnsmessage.Message) [][]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for n := 1; ; n++ {
			size, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var req dnsmessage.Message
			if req.Unpack(buf[:size]) != nil {
				continue
			}
			for _, b := range handle(n, req) {
				_, _ = pc.WriteTo(b, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// answer is req's answer with one A record, under id.
func answer(t *testing.T, req dnsmessage.Message, id uint16) []byte {
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: id, Response: true}, Questions: req.Questions,
		Answers: []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: req.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}}}}
	b, err := m.Pack()
	if err != nil {
		t.Error(err)
	}
	return b
}

// Over UDP a datagram that answers another query (another ID) is ignored,
// and the answer to ours is taken.
func TestExchangeIgnoresStrayDatagrams(t *testing.T) {
	server := udpServer(t, func(_ int, req dnsmessage.Message) [][]byte {
		return [][]byte{[]byte("junk"), answer(t, req, req.ID+1), answer(t, req, req.ID)}
	})
	q, err := Question("www.example.com", dnsmessage.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Exchange(context.Background(), "udp", server, q)
	if err != nil || len(m.Answers) != 1 {
		t.Fatalf("Exchange = %+v, %v; want the one answer", m, err)
	}
	if !m.Header.Response || len(m.Questions) != 1 || m.Questions[0] != q {
		t.Errorf("answer %+v does not answer %v", m, q)
	}
}

// A UDP query that gets no answer is sent again after 3 seconds; a server
// that never answers gives up within ctx.
func TestAskRetriesOverUDP(t *testing.T) {
	var asked atomic.Int32
	server := udpServer(t, func(n int, req dnsmessage.Message) [][]byte {
		asked.Store(int32(n))
		if n == 1 {
			return nil
		}
		return [][]byte{answer(t, req, req.ID)}
	})
	q, err := Question("www.example.com", dnsmessage.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if m, err := Ask(context.Background(), server, q); err != nil || len(m.Answers) != 1 || asked.Load() != 2 {
		t.Fatalf("Ask = %+v, %v after %d queries; want the answer to the second", m, err, asked.Load())
	}
	if d := time.Since(start); d < exchangeTimeout {
		t.Errorf("the answer came after %s, before the first try timed out", d)
	}

	silent := udpServer(t, func(int, dnsmessage.Message) [][]byte { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if _, err := Ask(ctx, silent, q); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("a silent server: %v after %s; want an error within the context's second", err, time.Since(start))
	}
}

// A TCP answer that does not answer the question is an error.
func TestExchangeTCPRefusesAnotherAnswer(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 65535)
		n, _ := c.Read(buf)
		var req dnsmessage.Message
		if n < 2 || req.Unpack(buf[2:n]) != nil {
			return
		}
		b := answer(t, req, req.ID+1)
		_, _ = c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
	}()
	q, err := Question("www.example.com", dnsmessage.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Exchange(context.Background(), "tcp", ln.Addr().String(), q)
	if err == nil || !strings.Contains(err.Error(), "the answer does not match the question www.example.com. TypeA") {
		t.Errorf("Exchange = %v, want a mismatch error", err)
	}
}

// A closed port fails at once, naming the server.
func TestLookupHostServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	start := time.Now()
	_, err = LookupHost(context.Background(), closed, "www.example.com")
	if err == nil || !strings.HasPrefix(err.Error(), "asking "+closed+": ") || time.Since(start) > exchangeTimeout {
		t.Errorf("LookupHost at a closed port: %v after %s", err, time.Since(start))
	}
}
