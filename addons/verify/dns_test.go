package verify

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/run"
)

// collect returns checks whose events are appended to *evs.
func collect(evs *[]run.Event) *checks {
	return &checks{report: func(e run.Event) { *evs = append(*evs, e) }}
}

// dnsZone starts the fake Route53 with zone example.com holding the
// registry's records, and returns it.
func dnsZone(t *testing.T) *route53test.Server {
	t.Helper()
	s := route53test.Start(t)
	z := s.AddZone("ZPUB", "example.com", false)
	for _, rs := range []route53test.RecordSet{
		{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.2", "198.51.100.12"}},
		{Name: "registry.example.com", Type: "TXT", TTL: 300, Values: []string{`"heritage=boot,cluster=lab"`}},
		{Name: "dual.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.5"}},
		{Name: "dual.example.com", Type: "AAAA", TTL: 300, Values: []string{"2001:db8::5"}},
		{Name: "txt-only.example.com", Type: "TXT", TTL: 300, Values: []string{`"x"`}},
	} {
		s.PutRecordSet(z, rs)
	}
	return s
}

func TestDNSAsksTheGivenServer(t *testing.T) {
	s := dnsZone(t)
	server := s.DNSAddr()
	for _, tc := range []struct {
		name    string
		host    string
		want    []string
		ok      bool
		message string
	}{
		{"right addresses, in another order", "registry.example.com", []string{"198.51.100.12", "198.51.100.2"}, true,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2 (asked " + server + ")"},
		{"A and AAAA", "dual.example.com.", []string{"2001:db8::5", "198.51.100.5"}, true,
			"dual.example.com. resolves to 198.51.100.5, 2001:db8::5 (asked " + server + ")"},
		{"wrong addresses", "registry.example.com", []string{"198.51.100.2", "198.51.100.99"}, false,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2, want 198.51.100.2, 198.51.100.99 (asked " + server + ")"},
		{"a missing address", "registry.example.com", []string{"198.51.100.2"}, false,
			"registry.example.com resolves to 198.51.100.12, 198.51.100.2, want 198.51.100.2 (asked " + server + ")"},
		{"no address record", "txt-only.example.com", []string{"198.51.100.2"}, false,
			"txt-only.example.com resolves to no address, want 198.51.100.2 (asked " + server + ")"},
		{"NXDOMAIN", "missing.example.com", []string{"198.51.100.2"}, false,
			"missing.example.com: " + server + " answered NXDOMAIN (no such name)"},
		{"outside the server's zones", "registry.example.org", []string{"198.51.100.2"}, false,
			"registry.example.org: " + server + " answered REFUSED (it does not serve that name) to the A query"},
	} {
		for _, lenient := range []bool{false, true} {
			name := tc.name
			if lenient {
				name += ", just installed"
			}
			t.Run(name, func(t *testing.T) {
				var evs []run.Event
				r := collect(&evs)
				if lenient {
					r.lenient = map[string]bool{"dns": true}
				}
				r.dns(context.Background(), server, tc.host, tc.want, 0)
				if len(evs) != 1 {
					t.Fatalf("%d events, want 1: %+v", len(evs), evs)
				}
				e := evs[0]
				want := run.OK
				switch {
				case !tc.ok && lenient:
					want = run.Warning
				case !tc.ok:
					want = run.Failed
				}
				if e.Phase != "verify" || e.Host != "dns" || e.Status != want || e.Message != tc.message {
					t.Errorf("event %s %s %s %q\nwant   verify dns %s %q", e.Phase, e.Host, e.Status, e.Message, want, tc.message)
				}
				if wantFailed := !tc.ok && !lenient; slices.Equal(r.failed, []string{"dns"}) != wantFailed || (!wantFailed && len(r.failed) != 0) {
					t.Errorf("failed checks %q", r.failed)
				}
			})
		}
	}
	// Every answer came from the fake: it saw each name asked.
	q := s.Queries()
	for _, want := range []string{"A registry.example.com.", "AAAA registry.example.com.", "AAAA dual.example.com.", "A missing.example.com.", "A registry.example.org."} {
		if !slices.Contains(q, want) {
			t.Errorf("the DNS server was not asked %q; it was asked %q", want, q)
		}
	}
}

// The DNS answers follow the zone: a record Route53 changes shows at once.
func TestDNSSeesZoneChanges(t *testing.T) {
	s := dnsZone(t)
	var evs []run.Event
	r := collect(&evs)
	s.PutRecordSet("ZPUB", route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.77"}})
	r.dns(context.Background(), s.DNSAddr(), "registry.example.com", []string{"198.51.100.77"}, 0)
	if len(r.failed) != 0 || evs[0].Status != run.OK {
		t.Errorf("after the change: %+v", evs)
	}
}

// Right after boot wrote the record, verify waits for the zone's servers
// to serve it: a record that shows a second later passes, one that never
// shows fails once the wait is over.
func TestDNSWaitsForANewRecord(t *testing.T) {
	s := dnsZone(t)
	go func() {
		time.Sleep(time.Second)
		s.PutRecordSet("ZPUB", route53test.RecordSet{Name: "new.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.9"}})
	}()
	var evs []run.Event
	r := collect(&evs)
	r.dns(context.Background(), s.DNSAddr(), "new.example.com", []string{"198.51.100.9"}, 10*time.Second)
	if len(r.failed) != 0 || len(evs) != 1 || evs[0].Status != run.OK {
		t.Errorf("a record that shows after a second: %+v", evs)
	}
	evs = nil
	r.dns(context.Background(), s.DNSAddr(), "never.example.com", []string{"198.51.100.9"}, 3*time.Second)
	if !slices.Equal(r.failed, []string{"dns"}) || len(evs) != 1 || !strings.Contains(evs[0].Message, "NXDOMAIN") {
		t.Errorf("a record that never shows: failed %q, events %+v", r.failed, evs)
	}
}

// A server that does not answer fails the check promptly with the reason.
func TestDNSServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	var evs []run.Event
	r := collect(&evs)
	r.dns(context.Background(), closed, "registry.example.com", []string{"198.51.100.2"}, 0)
	if !slices.Equal(r.failed, []string{"dns"}) || len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "registry.example.com: asking "+closed+": ") {
		t.Errorf("failed %q, events %+v", r.failed, evs)
	}
}
