package route53test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The DNS side of the fake: an authoritative server for the fake's hosted
// zones on 127.0.0.1, UDP and TCP on the same random port ([Server.DNSAddr]).
//
// It answers from each zone's current record sets: a change batch shows in
// its answers as soon as ChangeResourceRecordSets accepts it, before
// GetChange says INSYNC (on real Route53 a change reaches every
// authoritative server by INSYNC; boot waits for INSYNC before it looks).
//
//   - A name inside a zone (the longest zone name that is a suffix of it; a
//     public zone before a private one of the same name): its A, AAAA, TXT,
//     CNAME, NS and SOA records, authoritative (AA). A CNAME at the name
//     answers every other type. Record sets with a set identifier (routing
//     policies) all answer together.
//   - A name with no record set but with record sets below it: NOERROR with
//     no answer (an empty non-terminal), the SOA in the authority section.
//   - Any other name inside a zone: NXDOMAIN, the SOA in the authority
//     section. Wildcard record sets (*.zone) are not expanded.
//   - A name in no zone, or a class other than IN: REFUSED.
//   - A type that exists at the name but that the fake cannot encode, and
//     alias record sets (whose targets it cannot resolve): SERVFAIL.
//   - Opcodes other than QUERY: NOTIMP; not exactly one question: FORMERR.
//
// A UDP answer larger than 512 bytes, or than the query's EDNS0 size, is sent
// truncated (TC, no records), as resolvers expect, so they retry over TCP.

type dnsServer struct {
	s    *Server
	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	tcps map[net.Conn]bool
}

// DNSAddr is the DNS server's address, 127.0.0.1:port, for UDP and TCP.
func (s *Server) DNSAddr() string { return s.dns.udp.LocalAddr().String() }

// Queries returns the DNS questions received, in order, as "TYPE name"
// (e.g. "A registry.example.com.").
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

func startDNS(s *Server) (*dnsServer, error) {
	d := &dnsServer{s: s, tcps: map[net.Conn]bool{}}
	// Find a port free for both UDP and TCP.
	var err error
	for range 20 {
		if d.udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		if d.tcp, err = net.Listen("tcp4", d.udp.LocalAddr().String()); err == nil {
			break
		}
		d.udp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("no port free for both UDP and TCP: %w", err)
	}
	d.wg.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	return d, nil
}

func (d *dnsServer) close() {
	d.udp.Close()
	d.tcp.Close()
	d.mu.Lock()
	for c := range d.tcps {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *dnsServer) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if resp := d.s.answer(buf[:n], true); resp != nil {
			_, _ = d.udp.WriteTo(resp, from)
		}
	}
}

func (d *dnsServer) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			return // closed
		}
		d.mu.Lock()
		d.tcps[c] = true
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() {
				d.mu.Lock()
				delete(d.tcps, c)
				d.mu.Unlock()
				c.Close()
			}()
			d.serveConn(c)
		}()
	}
}

// serveConn answers length-prefixed queries on a TCP connection until the
// client closes it or stays idle for 10 seconds.
func (d *dnsServer) serveConn(c net.Conn) {
	for {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var n uint16
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := d.s.answer(msg, false)
		if resp == nil {
			return
		}
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// answer builds the response to one query message, or nil for a message
// that is not a query at all.
func (s *Server) answer(req []byte, udp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	qs, err := p.AllQuestions()
	resp := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired}
	switch {
	case h.OpCode != 0:
		resp.RCode = dnsmessage.RCodeNotImplemented
		return build(resp, nil, nil, nil, nil)
	case err != nil || len(qs) != 1:
		resp.RCode = dnsmessage.RCodeFormatError
		return build(resp, nil, nil, nil, nil)
	}
	q := qs[0]
	limit := 65535
	if udp {
		limit = 512
	}
	var opt *dnsmessage.Resource
	if size, ok := ednsSize(&p); ok {
		if udp {
			limit = max(512, min(size, 4096))
		}
		var hdr dnsmessage.ResourceHeader
		if hdr.SetEDNS0(1232, dnsmessage.RCodeSuccess, false) == nil {
			opt = &dnsmessage.Resource{Header: hdr, Body: &dnsmessage.OPTResource{}}
		}
	}

	s.mu.Lock()
	s.queries = append(s.queries, strings.TrimPrefix(q.Type.String(), "Type")+" "+q.Name.String())
	rcode, answers, authority := s.lookup(q)
	s.mu.Unlock()

	resp.RCode = rcode
	resp.Authoritative = rcode == dnsmessage.RCodeSuccess || rcode == dnsmessage.RCodeNameError
	out := build(resp, &q, answers, authority, opt)
	if len(out) > limit {
		resp.Truncated = true
		out = build(resp, &q, nil, nil, opt)
	}
	return out
}

// ednsSize returns the UDP size a query's EDNS0 OPT record offers, if it has
// one; p stands after the questions.
func ednsSize(p *dnsmessage.Parser) (int, bool) {
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return 0, false
	}
	extra, err := p.AllAdditionals()
	if err != nil {
		return 0, false
	}
	for _, r := range extra {
		if r.Header.Type == dnsmessage.TypeOPT {
			return int(r.Header.Class), true // an OPT's class is the sender's UDP size
		}
	}
	return 0, false
}

// build packs a response; the fake's own records always pack, so a failure
// is answered as SERVFAIL.
func build(h dnsmessage.Header, q *dnsmessage.Question, answers, authority []dnsmessage.Resource, opt *dnsmessage.Resource) []byte {
	msg := dnsmessage.Message{Header: h, Answers: answers, Authorities: authority}
	if q != nil {
		msg.Questions = []dnsmessage.Question{*q}
	}
	if opt != nil {
		msg.Additionals = []dnsmessage.Resource{*opt}
	}
	out, err := msg.Pack()
	if err != nil {
		msg.Header.RCode, msg.Answers, msg.Authorities = dnsmessage.RCodeServerFailure, nil, nil
		out, _ = msg.Pack()
	}
	return out
}

// lookup answers a question from the zones; s.mu is held.
func (s *Server) lookup(q dnsmessage.Question) (dnsmessage.RCode, []dnsmessage.Resource, []dnsmessage.Resource) {
	name := strings.ToLower(q.Name.String())
	z := s.zoneFor(name)
	if z == nil || q.Class != dnsmessage.ClassINET {
		return dnsmessage.RCodeRefused, nil, nil
	}
	soa, err := z.soa()
	if err != nil {
		s.t.Errorf("fake route53 DNS: %v", err)
		return dnsmessage.RCodeServerFailure, nil, nil
	}
	var here []RecordSet
	below := false
	for _, rs := range z.sets {
		switch {
		case rs.Name == name:
			here = append(here, rs)
		case strings.HasSuffix(rs.Name, "."+name):
			below = true
		}
	}
	if len(here) == 0 {
		if below {
			return dnsmessage.RCodeSuccess, nil, soa
		}
		return dnsmessage.RCodeNameError, nil, soa
	}
	typ := strings.TrimPrefix(q.Type.String(), "Type")
	if q.Type != dnsmessage.TypeCNAME {
		for _, rs := range here {
			if rs.Type == "CNAME" {
				typ = "CNAME"
			}
		}
	}
	var answers []dnsmessage.Resource
	for _, rs := range here {
		if rs.Type != typ {
			continue
		}
		if rs.Alias != nil {
			return dnsmessage.RCodeServerFailure, nil, nil
		}
		for _, v := range rs.Values {
			body, err := resourceBody(rs.Type, v)
			if err != nil {
				s.t.Errorf("fake route53 DNS: %s %s value %q: %v", rs.Name, rs.Type, v, err)
				return dnsmessage.RCodeServerFailure, nil, nil
			}
			answers = append(answers, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: uint32(rs.TTL)},
				Body:   body,
			})
		}
	}
	if len(answers) == 0 {
		return dnsmessage.RCodeSuccess, nil, soa // no data of that type
	}
	return dnsmessage.RCodeSuccess, answers, nil
}

// zoneFor returns the zone a name belongs to: the longest zone name that is
// a suffix of it, public before private; s.mu is held.
func (s *Server) zoneFor(name string) *zone {
	var best *zone
	for _, z := range s.zones {
		if name != z.name && !strings.HasSuffix(name, "."+z.name) {
			continue
		}
		if best == nil || len(z.name) > len(best.name) || (len(z.name) == len(best.name) && best.private && !z.private) {
			best = z
		}
	}
	return best
}

// soa returns the zone's SOA record for an authority section, its TTL the
// smaller of the set's TTL and the SOA's minimum, as negative answers carry.
func (z *zone) soa() ([]dnsmessage.Resource, error) {
	for _, rs := range z.sets {
		if rs.Name != z.name || rs.Type != "SOA" || len(rs.Values) == 0 {
			continue
		}
		body, err := resourceBody("SOA", rs.Values[0])
		if err != nil {
			return nil, fmt.Errorf("zone %s SOA: %w", z.name, err)
		}
		name, err := dnsmessage.NewName(z.name)
		if err != nil {
			return nil, err
		}
		return []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: min(uint32(rs.TTL), body.(*dnsmessage.SOAResource).MinTTL)},
			Body:   body,
		}}, nil
	}
	return nil, nil
}

// resourceBody turns a Route53 value into a DNS record body.
func resourceBody(typ, v string) (dnsmessage.ResourceBody, error) {
	switch typ {
	case "A", "AAAA":
		ip, err := netip.ParseAddr(v)
		switch {
		case err != nil:
			return nil, err
		case typ == "A" && ip.Is4():
			return &dnsmessage.AResource{A: ip.As4()}, nil
		case typ == "AAAA" && ip.Is6() && !ip.Is4In6():
			return &dnsmessage.AAAAResource{AAAA: ip.As16()}, nil
		}
		return nil, fmt.Errorf("not an %s address", typ)
	case "TXT":
		txt, err := txtStrings(v)
		if err != nil {
			return nil, err
		}
		return &dnsmessage.TXTResource{TXT: txt}, nil
	case "CNAME", "NS":
		n, err := dnsmessage.NewName(fqdn(v))
		if err != nil {
			return nil, err
		}
		if typ == "NS" {
			return &dnsmessage.NSResource{NS: n}, nil
		}
		return &dnsmessage.CNAMEResource{CNAME: n}, nil
	case "SOA":
		f := strings.Fields(v)
		if len(f) != 7 {
			return nil, errors.New("want 7 fields")
		}
		ns, err1 := dnsmessage.NewName(fqdn(f[0]))
		mbox, err2 := dnsmessage.NewName(fqdn(f[1]))
		var nums [5]uint32
		errs := []error{err1, err2}
		for i, s := range f[2:] {
			n, err := strconv.ParseUint(s, 10, 32)
			nums[i] = uint32(n)
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return &dnsmessage.SOAResource{NS: ns, MBox: mbox, Serial: nums[0], Refresh: nums[1], Retry: nums[2], Expire: nums[3], MinTTL: nums[4]}, nil
	}
	return nil, fmt.Errorf("the fake does not answer type %s", typ)
}

// txtStrings parses a TXT value as Route53 writes it: one or more quoted
// character strings separated by spaces, with \" \\ and \DDD escapes inside,
// each at most 255 bytes.
func txtStrings(v string) ([]string, error) {
	var out []string
	for i := 0; i < len(v); {
		if v[i] == ' ' {
			i++
			continue
		}
		if v[i] != '"' {
			return nil, fmt.Errorf("character %d: want a quoted string", i+1)
		}
		var b []byte
		i++
		for {
			if i >= len(v) {
				return nil, errors.New("unterminated quoted string")
			}
			c := v[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				switch {
				case i+3 < len(v) && isDigits(v[i+1:i+4]):
					n, _ := strconv.Atoi(v[i+1 : i+4])
					if n > 255 {
						return nil, fmt.Errorf("escape \\%s is not a byte", v[i+1:i+4])
					}
					b = append(b, byte(n))
					i += 4
					continue
				case i+1 < len(v):
					c = v[i+1]
					i++
				default:
					return nil, errors.New("unterminated escape")
				}
			}
			b = append(b, c)
			i++
		}
		if len(b) > 255 {
			return nil, errors.New("a character string is longer than 255 bytes")
		}
		out = append(out, string(b))
	}
	if len(out) == 0 {
		return nil, errors.New("no character string")
	}
	return out, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
