package lab

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// queryDNS asks server (host:port) one question over network ("udp" or
// "tcp") and returns the answer, waiting at most until ctx ends.
func queryDNS(ctx context.Context, network, server, name string, typ dnsmessage.Type) (*dnsmessage.Message, error) {
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return nil, err
	}
	q := dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}
	req := dnsmessage.Message{Header: dnsmessage.Header{ID: uint16(rand.Uint32())}, Questions: []dnsmessage.Question{q}}
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
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(3 * time.Second)
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	if network == "tcp" {
		if _, err := c.Write(append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)); err != nil {
			return nil, err
		}
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return nil, err
		}
		buf = buf[:int(size[0])<<8|int(size[1])]
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
	} else {
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		buf = buf[:n]
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%s: unreadable answer: %w", server, err)
	}
	if m.ID != req.ID || len(m.Questions) != 1 || m.Questions[0] != q {
		return nil, fmt.Errorf("%s: the answer does not match the question %s %s", server, name, typ)
	}
	return &m, nil
}

// checkZoneServed asks server for LabZone's SOA over UDP and TCP.
func checkZoneServed(ctx context.Context, server string) error {
	for _, network := range []string{"udp", "tcp"} {
		m, err := queryDNS(ctx, network, server, LabZone, dnsmessage.TypeSOA)
		if err != nil {
			return fmt.Errorf("SOA %s over %s: %w", LabZone, network, err)
		}
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) == 0 {
			return fmt.Errorf("SOA %s over %s: %s with %d answers", LabZone, network, m.RCode, len(m.Answers))
		}
	}
	return nil
}
