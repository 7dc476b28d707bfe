package route53test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"golang.org/x/net/dns/dnsmessage"
)

// query sends one question to the fake's DNS server over network ("udp" or
// "tcp"), with an EDNS0 OPT offering ednsSize bytes when it is not 0, and
// returns the parsed answer after checking it answers this query.
func query(t *testing.T, s *Server, network, name string, typ dnsmessage.Type, ednsSize int) *dnsmessage.Message {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	if ednsSize > 0 {
		var h dnsmessage.ResourceHeader
		if err := h.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false); err != nil {
			t.Fatal(err)
		}
		q.Additionals = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.OPTResource{}}}
	}
	resp := exchange(t, s.DNSAddr(), network, q)
	if resp.ID != q.ID || !resp.Response || len(resp.Questions) != 1 || resp.Questions[0] != q.Questions[0] {
		t.Fatalf("the answer does not match the query: %+v", resp.Header)
	}
	return resp
}

// exchange packs q, sends it and parses the answer.
func exchange(t *testing.T, addr, network string, q dnsmessage.Message) *dnsmessage.Message {
	t.Helper()
	msg, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	var n int
	if network == "tcp" {
		msg = append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		var size uint16
		if err := binary.Read(c, binary.BigEndian, &size); err != nil {
			t.Fatal(err)
		}
		n, err = io.ReadFull(c, buf[:size])
	} else {
		n, err = c.Read(buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	var resp dnsmessage.Message
	if err := resp.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpacking the answer: %v", err)
	}
	return &resp
}

// records writes a section compactly: "name TYPE ttl value".
func records(rs []dnsmessage.Resource) []string {
	var out []string
	for _, r := range rs {
		v := ""
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			v = net.IP(b.A[:]).String()
		case *dnsmessage.AAAAResource:
			v = net.IP(b.AAAA[:]).String()
		case *dnsmessage.TXTResource:
			v = fmt.Sprintf("%q", b.TXT)
		case *dnsmessage.CNAMEResource:
			v = b.CNAME.String()
		case *dnsmessage.NSResource:
			v = b.NS.String()
		case *dnsmessage.SOAResource:
			v = fmt.Sprintf("%s %s %d %d %d %d %d", b.NS, b.MBox, b.Serial, b.Refresh, b.Retry, b.Expire, b.MinTTL)
		default:
			v = r.Body.GoString()
		}
		out = append(out, fmt.Sprintf("%s %s %d %s", r.Header.Name, strings.TrimPrefix(r.Header.Type.String(), "Type"), r.Header.TTL, v))
	}
	return out
}

func wantAnswer(t *testing.T, m *dnsmessage.Message, rcode dnsmessage.RCode, answers, authority []string) {
	t.Helper()
	if m.RCode != rcode {
		t.Errorf("rcode %s, want %s", m.RCode, rcode)
	}
	if got := records(m.Answers); !slices.Equal(got, answers) {
		t.Errorf("answers:\n got  %q\n want %q", got, answers)
	}
	if got := records(m.Authorities); !slices.Equal(got, authority) {
		t.Errorf("authority:\n got  %q\n want %q", got, authority)
	}
}

const soa = "example.com. SOA 900 ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"

func exampleZone(t *testing.T) (*Server, string) {
	s := Start(t)
	z := s.AddZone("ZPUB", "example.com", false)
	s.PutRecordSet(z, RecordSet{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.2", "198.51.100.12"}})
	s.PutRecordSet(z, RecordSet{Name: "registry.example.com", Type: "TXT", TTL: 300, Values: []string{`"heritage=boot,cluster=lab"`, `"two" "strings"`, `"say \"hi\" \\ \065\066"`}})
	s.PutRecordSet(z, RecordSet{Name: "registry.example.com", Type: "AAAA", TTL: 60, Values: []string{"2001:db8::1"}})
	s.PutRecordSet(z, RecordSet{Name: "a.b.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.3"}})
	s.PutRecordSet(z, RecordSet{Name: "www.example.com", Type: "CNAME", TTL: 60, Values: []string{"registry.example.com"}})
	return s, z
}

func TestDNSAnswersRecordSets(t *testing.T) {
	s, _ := exampleZone(t)
	for _, tc := range []struct {
		name    string
		typ     dnsmessage.Type
		answers []string
	}{
		{"registry.example.com.", dnsmessage.TypeA, []string{"registry.example.com. A 300 198.51.100.2", "registry.example.com. A 300 198.51.100.12"}},
		{"registry.example.com.", dnsmessage.TypeAAAA, []string{"registry.example.com. AAAA 60 2001:db8::1"}},
		{"registry.example.com.", dnsmessage.TypeTXT, []string{`registry.example.com. TXT 300 ["heritage=boot,cluster=lab"]`,
			`registry.example.com. TXT 300 ["two" "strings"]`, `registry.example.com. TXT 300 ["say \"hi\" \\ AB"]`}},
		// Names match whatever their case; the answer keeps the question's.
		{"Registry.EXAMPLE.com.", dnsmessage.TypeA, []string{"Registry.EXAMPLE.com. A 300 198.51.100.2", "Registry.EXAMPLE.com. A 300 198.51.100.12"}},
		// A CNAME answers every type.
		{"www.example.com.", dnsmessage.TypeA, []string{"www.example.com. CNAME 60 registry.example.com."}},
		{"example.com.", dnsmessage.TypeNS, []string{"example.com. NS 172800 ns-1.awsdns-00.com.", "example.com. NS 172800 ns-2.awsdns-00.net."}},
		{"example.com.", dnsmessage.TypeSOA, []string{soa}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+" "+tc.typ.String()+" "+network, func(t *testing.T) {
				m := query(t, s, network, tc.name, tc.typ, 0)
				wantAnswer(t, m, dnsmessage.RCodeSuccess, tc.answers, nil)
				if !m.Authoritative || m.Truncated {
					t.Errorf("AA %v TC %v, want AA and not TC", m.Authoritative, m.Truncated)
				}
			})
		}
	}
}

func TestDNSNegativeAnswers(t *testing.T) {
	s, _ := exampleZone(t)
	for _, tc := range []struct {
		why       string
		name      string
		typ       dnsmessage.Type
		rcode     dnsmessage.RCode
		authority []string
	}{
		{"no such name", "missing.example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, []string{soa}},
		{"below an existing name", "x.registry.example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, []string{soa}},
		{"no data of that type", "registry.example.com.", dnsmessage.TypeMX, dnsmessage.RCodeSuccess, []string{soa}},
		{"empty non-terminal", "b.example.com.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{soa}},
		{"another zone", "registry.example.org.", dnsmessage.TypeA, dnsmessage.RCodeRefused, nil},
		{"a zone name that only ends alike", "registry.notexample.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, nil},
		{"the root", ".", dnsmessage.TypeNS, dnsmessage.RCodeRefused, nil},
	} {
		t.Run(tc.why, func(t *testing.T) {
			m := query(t, s, "udp", tc.name, tc.typ, 0)
			wantAnswer(t, m, tc.rcode, nil, tc.authority)
			if want := tc.rcode != dnsmessage.RCodeRefused; m.Authoritative != want {
				t.Errorf("AA %v, want %v", m.Authoritative, want)
			}
		})
	}
	if got := s.Queries(); !slices.Contains(got, "A missing.example.com.") || !slices.Contains(got, "MX registry.example.com.") || len(got) != 7 {
		t.Errorf("Queries() = %q", got)
	}
}

func TestDNSBadQueries(t *testing.T) {
	s, _ := exampleZone(t)
	name := dnsmessage.MustNewName("registry.example.com.")
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	two := exchange(t, s.DNSAddr(), "udp", dnsmessage.Message{Header: dnsmessage.Header{ID: 1}, Questions: []dnsmessage.Question{q, q}})
	if two.RCode != dnsmessage.RCodeFormatError || len(two.Answers) != 0 {
		t.Errorf("two questions: %s with %d answers, want FORMERR", two.RCode, len(two.Answers))
	}
	notify := exchange(t, s.DNSAddr(), "udp", dnsmessage.Message{Header: dnsmessage.Header{ID: 2, OpCode: 4}, Questions: []dnsmessage.Question{q}})
	if notify.RCode != dnsmessage.RCodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", notify.RCode)
	}
	chaos := q
	chaos.Class = dnsmessage.ClassCHAOS
	if m := exchange(t, s.DNSAddr(), "udp", dnsmessage.Message{Header: dnsmessage.Header{ID: 3}, Questions: []dnsmessage.Question{chaos}}); m.RCode != dnsmessage.RCodeRefused {
		t.Errorf("class CHAOS: %s, want REFUSED", m.RCode)
	}
}

func TestDNSZoneChoice(t *testing.T) {
	s := Start(t)
	parent := s.AddZone("ZPARENT", "example.com", false)
	priv := s.AddZone("ZPRIV", "sub.example.com", true)
	pub := s.AddZone("ZSUB", "sub.example.com", false)
	s.PutRecordSet(parent, RecordSet{Name: "x.sub.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.1"}})
	s.PutRecordSet(priv, RecordSet{Name: "x.sub.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.2"}})
	s.PutRecordSet(pub, RecordSet{Name: "x.sub.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.3"}})
	wantAnswer(t, query(t, s, "udp", "x.sub.example.com.", dnsmessage.TypeA, 0), dnsmessage.RCodeSuccess,
		[]string{"x.sub.example.com. A 60 198.51.100.3"}, nil)

	// A private zone alone answers.
	s2 := Start(t)
	z := s2.AddZone("ZPRIV", "example.com", true)
	s2.PutRecordSet(z, RecordSet{Name: "x.example.com", Type: "A", TTL: 60, Values: []string{"198.51.100.2"}})
	wantAnswer(t, query(t, s2, "udp", "x.example.com.", dnsmessage.TypeA, 0), dnsmessage.RCodeSuccess,
		[]string{"x.example.com. A 60 198.51.100.2"}, nil)
}

func TestDNSTruncatesLargeUDPAnswers(t *testing.T) {
	s := Start(t)
	z := s.AddZone("ZPUB", "example.com", false)
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("198.51.100.%d", i+1))
	}
	s.PutRecordSet(z, RecordSet{Name: "big.example.com", Type: "A", TTL: 60, Values: many})

	m := query(t, s, "udp", "big.example.com.", dnsmessage.TypeA, 0)
	if !m.Truncated || len(m.Answers) != 0 {
		t.Errorf("UDP without EDNS0: TC %v with %d answers, want TC and none", m.Truncated, len(m.Answers))
	}
	for _, tc := range []struct {
		network string
		edns    int
	}{{"udp", 4096}, {"tcp", 0}} {
		m := query(t, s, tc.network, "big.example.com.", dnsmessage.TypeA, tc.edns)
		if m.Truncated || len(m.Answers) != 60 {
			t.Errorf("%s (EDNS0 %d): TC %v with %d answers, want all 60", tc.network, tc.edns, m.Truncated, len(m.Answers))
		}
	}
}

// A change accepted through the API shows in DNS at once, before GetChange
// says INSYNC; a deletion turns the name into NXDOMAIN.
func TestDNSFollowsChanges(t *testing.T) {
	s := Start(t)
	s.AddZone("ZPUB", "example.com", false)
	s.SetPendingPolls(1 << 30)
	c := route53.New(route53.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}, nil
		})})
	a := &types.ResourceRecordSet{Name: aws.String("registry.example.com"), Type: types.RRTypeA, TTL: aws.Int64(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("198.51.100.7")}}}
	change := func(action types.ChangeAction) {
		t.Helper()
		if _, err := c.ChangeResourceRecordSets(context.Background(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String("ZPUB"),
			ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: action, ResourceRecordSet: a}}}}); err != nil {
			t.Fatal(err)
		}
	}

	wantAnswer(t, query(t, s, "udp", "registry.example.com.", dnsmessage.TypeA, 0), dnsmessage.RCodeNameError, nil, []string{soa})
	change(types.ChangeActionUpsert)
	wantAnswer(t, query(t, s, "udp", "registry.example.com.", dnsmessage.TypeA, 0), dnsmessage.RCodeSuccess,
		[]string{"registry.example.com. A 300 198.51.100.7"}, nil)
	change(types.ChangeActionDelete)
	wantAnswer(t, query(t, s, "udp", "registry.example.com.", dnsmessage.TypeA, 0), dnsmessage.RCodeNameError, nil, []string{soa})
	if got := s.RecordSets("ZPUB"); len(got) != 2 {
		t.Errorf("record sets after the deletion: %q", got)
	}
}

func TestTXTStrings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{`"a"`, []string{"a"}, ""},
		{`"a b"  "c"`, []string{"a b", "c"}, ""},
		{`"\"q\" \\ \097\255"`, []string{"\"q\" \\ a\xff"}, ""},
		{`""`, []string{""}, ""},
		{`a`, nil, "want a quoted string"},
		{`"a`, nil, "unterminated quoted string"},
		{`"a\`, nil, "unterminated escape"},
		{`"\256"`, nil, "is not a byte"},
		{`"` + strings.Repeat("x", 256) + `"`, nil, "longer than 255 bytes"},
		{``, nil, "no character string"},
	} {
		got, err := txtStrings(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("txtStrings(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("txtStrings(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
