// Package dnsquery asks one DNS server directly, over UDP and TCP: unlike
// the system resolver it reads no hosts file, appends no search domain and
// keeps no cache, so the answer is that server's. boot verify asks the
// zone's authoritative server with it, the lab its DNS server.
package dnsquery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// exchangeTimeout bounds one query and its answer.
const exchangeTimeout = 3 * time.Second

// Question is the question for name's records of type typ, class IN; name
// may end in a dot or not.
func Question(name string, typ dnsmessage.Type) (dnsmessage.Question, error) {
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return dnsmessage.Question{}, fmt.Errorf("DNS name %q: %w", name, err)
	}
	return dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}, nil
}

// Ask sends q to server (HOST:PORT): over UDP, up to 3 tries of 3 seconds
// each within ctx, then over TCP when the UDP answer is truncated.
func Ask(ctx context.Context, server string, q dnsmessage.Question) (*dnsmessage.Message, error) {
	var m *dnsmessage.Message
	var err error
	for try := 0; try < 3; try++ {
		m, err = Exchange(ctx, "udp", server, q)
		var ne net.Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	if err == nil && m.Truncated {
		m, err = Exchange(ctx, "tcp", server, q)
	}
	return m, err
}

// Exchange sends q once to server (HOST:PORT) over network ("udp" or "tcp")
// and returns the answer to it, waiting at most 3 seconds and never past
// ctx. The query asks for recursion and offers EDNS0 answers of up to 1232
// bytes. Over UDP, datagrams that do not answer the query are ignored; over
// TCP such an answer is an error.
func Exchange(ctx context.Context, network, server string, q dnsmessage.Question) (*dnsmessage.Message, error) {
	req := dnsmessage.Message{Header: dnsmessage.Header{ID: uint16(rand.Uint32()), RecursionDesired: true}, Questions: []dnsmessage.Question{q}}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	req.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	msg, err := req.Pack()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	deadline := time.Now().Add(exchangeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if network == "tcp" {
		msg = append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		var n int
		if network == "tcp" {
			var size [2]byte
			if _, err = io.ReadFull(c, size[:]); err == nil {
				n = int(binary.BigEndian.Uint16(size[:]))
				_, err = io.ReadFull(c, buf[:n])
			}
		} else {
			n, err = c.Read(buf)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) == nil && m.Response && m.ID == req.ID &&
			(len(m.Questions) == 0 || len(m.Questions) == 1 && m.Questions[0].Type == q.Type && strings.EqualFold(m.Questions[0].Name.String(), q.Name.String())) {
			return &m, nil
		}
		if network == "tcp" {
			return nil, fmt.Errorf("%s: the answer does not match the question %s %s", server, q.Name, q.Type)
		}
	}
}

// LookupHost asks server (HOST:PORT) for host's A and AAAA records, with
// Ask, and returns the addresses of host and of the names its CNAMEs lead
// to. NXDOMAIN and other failures are errors that name the server.
func LookupHost(ctx context.Context, server, host string) ([]string, error) {
	fq := strings.ToLower(strings.TrimSuffix(host, ".")) + "."
	var addrs []string
	for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		q, err := Question(fq, typ)
		if err != nil {
			return nil, err
		}
		m, err := Ask(ctx, server, q)
		if err != nil {
			return nil, fmt.Errorf("asking %s: %w", server, err)
		}
		switch m.RCode {
		case dnsmessage.RCodeSuccess:
		case dnsmessage.RCodeNameError:
			return nil, fmt.Errorf("%s answered NXDOMAIN (no such name)", server)
		default:
			return nil, fmt.Errorf("%s answered %s to the %s query", server, rcodeName(m.RCode), strings.TrimPrefix(typ.String(), "Type"))
		}
		// The names that lead to the addresses: host and the CNAMEs the
		// answer gives for it.
		cnames := map[string]string{}
		for _, a := range m.Answers {
			if c, ok := a.Body.(*dnsmessage.CNAMEResource); ok {
				cnames[strings.ToLower(a.Header.Name.String())] = strings.ToLower(c.CNAME.String())
			}
		}
		names := map[string]bool{fq: true}
		for n, hops := fq, 0; cnames[n] != "" && hops < 8; hops++ {
			n = cnames[n]
			names[n] = true
		}
		for _, a := range m.Answers {
			if !names[strings.ToLower(a.Header.Name.String())] {
				continue
			}
			switch b := a.Body.(type) {
			case *dnsmessage.AResource:
				addrs = append(addrs, netip.AddrFrom4(b.A).String())
			case *dnsmessage.AAAAResource:
				addrs = append(addrs, netip.AddrFrom16(b.AAAA).String())
			}
		}
	}
	return addrs, nil
}

// rcodeName names an answer's response code as operators know it.
func rcodeName(c dnsmessage.RCode) string {
	switch c {
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeRefused:
		return "REFUSED (it does not serve that name)"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	}
	return c.String()
}
