package lab

import (
	"context"
	"fmt"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bootctl/boot/internal/dnsquery"
)

// queryDNS asks server (host:port) one question over network ("udp" or
// "tcp") and returns the answer, waiting at most 3 seconds and never past
// ctx.
func queryDNS(ctx context.Context, network, server, name string, typ dnsmessage.Type) (*dnsmessage.Message, error) {
	q, err := dnsquery.Question(name, typ)
	if err != nil {
		return nil, err
	}
	return dnsquery.Exchange(ctx, network, server, q)
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
