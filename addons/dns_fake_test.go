package addons

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRoute53 is a minimal Route53 speaking the REST/XML protocol of API
// version 2013-04-01 on 127.0.0.1: ListHostedZonesByName,
// ListResourceRecordSets, ChangeResourceRecordSets (validated and applied
// atomically, with Route53's rules for CREATE, DELETE and UPSERT) and
// GetChange. It keeps zones and record sets in memory, records every change
// batch it receives, checks that each request is signed for region us-east-1
// with the test access key and carries no secret key, and injects AWS error
// responses on request.
type fakeRoute53 struct {
	t         *testing.T
	srv       *httptest.Server
	accessKey string
	secretKey string

	mu           sync.Mutex
	zones        []*fakeZone
	pageSize     int                // items per list page unless the request's maxitems is smaller
	pendingPolls int                // GetChange calls that answer PENDING before INSYNC
	pending      map[string]int     // change ID -> PENDING answers left
	batches      []fakeBatch        // every change batch received, accepted or not
	calls        map[string]int     // operation -> requests received
	faults       map[string][]fault // operation -> errors to answer, in order
	nextChange   int
	// beforeChange, when set, runs (under the lock) before a change batch is
	// validated: someone else changing the zone meanwhile.
	beforeChange func(z *fakeZone)
}

type fakeZone struct {
	id      string // as Route53 returns it: /hostedzone/Z...
	name    string // lower case, trailing dot
	private bool
	sets    []xmlRRSet
}

type fakeBatch struct {
	zone     string // zone ID without /hostedzone/
	comment  string
	changes  []string // "ACTION name TYPE ttl value value..."
	accepted bool
}

type fault struct {
	status int
	code   string
}

const route53NS = "https://route53.amazonaws.com/doc/2013-04-01/"

// XML shapes of the API, as the SDK serializes and expects them.
type xmlRRSet struct {
	Name          string    `xml:"Name"`
	Type          string    `xml:"Type"`
	SetIdentifier string    `xml:"SetIdentifier,omitempty"`
	Weight        *int64    `xml:"Weight,omitempty"`
	AliasTarget   *xmlAlias `xml:"AliasTarget,omitempty"`
	TTL           *int64    `xml:"TTL,omitempty"`
	Records       []struct {
		Value string `xml:"Value"`
	} `xml:"ResourceRecords>ResourceRecord"`
	Values []string `xml:"-"` // the Records' values, which the fake works with
}

// encoded returns the set with Records filled from Values, for a response.
func (rs xmlRRSet) encoded() xmlRRSet {
	rs.Records = nil
	for _, v := range rs.Values {
		rs.Records = append(rs.Records, struct {
			Value string `xml:"Value"`
		}{v})
	}
	return rs
}

// decoded returns the set with Values filled from Records, from a request.
func (rs xmlRRSet) decoded() xmlRRSet {
	rs.Values = nil
	for _, r := range rs.Records {
		rs.Values = append(rs.Values, r.Value)
	}
	rs.Records = nil
	return rs
}

type xmlAlias struct {
	HostedZoneID         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

type xmlChangeRequest struct {
	XMLName xml.Name `xml:"ChangeResourceRecordSetsRequest"`
	Comment string   `xml:"ChangeBatch>Comment"`
	Changes []struct {
		Action string   `xml:"Action"`
		Set    xmlRRSet `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

type xmlChangeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

type xmlHostedZone struct {
	ID              string `xml:"Id"`
	Name            string `xml:"Name"`
	CallerReference string `xml:"CallerReference"`
	PrivateZone     bool   `xml:"Config>PrivateZone"`
	RecordCount     int    `xml:"ResourceRecordSetCount"`
}

func newFakeRoute53(t *testing.T, accessKey, secretKey string) *fakeRoute53 {
	f := &fakeRoute53{t: t, accessKey: accessKey, secretKey: secretKey, pageSize: 100,
		pending: map[string]int{}, calls: map[string]int{}, faults: map[string][]fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2013-04-01/hostedzonesbyname", f.op("ListHostedZonesByName", f.listZones))
	mux.HandleFunc("GET /2013-04-01/hostedzone/{id}/rrset", f.op("ListResourceRecordSets", f.listSets))
	mux.HandleFunc("POST /2013-04-01/hostedzone/{id}/rrset", f.op("ChangeResourceRecordSets", f.changeSets))
	mux.HandleFunc("GET /2013-04-01/change/{id}", f.op("GetChange", f.getChange))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake route53: unexpected request %s %s", r.Method, r.URL)
		writeAWSError(w, http.StatusNotFound, "UnknownOperationException", "no such operation")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// addZone adds a hosted zone with its SOA and NS records and returns its ID
// as Route53 does (/hostedzone/<id>).
func (f *fakeRoute53) addZone(id, name string, private bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = fqdn(name)
	z := &fakeZone{id: "/hostedzone/" + id, name: name, private: private}
	z.sets = []xmlRRSet{
		{Name: name, Type: "NS", TTL: ptr(int64(172800)), Values: []string{"ns-1.awsdns-00.com.", "ns-2.awsdns-00.net."}},
		{Name: name, Type: "SOA", TTL: ptr(int64(900)), Values: []string{"ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}},
	}
	f.zones = append(f.zones, z)
	return z.id
}

// addSet puts a record set into a zone directly (state created outside boot).
func (f *fakeRoute53) addSet(zoneID string, rs xmlRRSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs.Name = fqdn(rs.Name)
	z := f.zone(strings.TrimPrefix(zoneID, "/hostedzone/"))
	z.sets = append(z.sets, rs)
}

// sets returns a zone's record sets in Route53's order, as compact strings.
func (f *fakeRoute53) sets(zoneID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zone(strings.TrimPrefix(zoneID, "/hostedzone/"))
	sortSets(z.sets)
	var out []string
	for _, rs := range z.sets {
		out = append(out, compactSet(rs))
	}
	return out
}

// fail makes the next n requests of op answer the AWS error code with HTTP
// status 400.
func (f *fakeRoute53) fail(op, code string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults[op] = append(f.faults[op], fault{http.StatusBadRequest, code})
	}
}

func (f *fakeRoute53) callCount(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeRoute53) received() []fakeBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/route53/aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}$`)

// op wraps a handler: it counts the request, checks its signature and that
// no secret is in it, and answers an injected fault instead when one is due.
func (f *fakeRoute53) op(name string, h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.t.Errorf("fake route53: %s: reading the body: %v", name, err)
		}
		m := sigV4.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil || m[1] != f.accessKey || m[2] != "us-east-1" {
			f.t.Errorf("fake route53: %s: Authorization %q is not a SigV4 signature with the test access key for us-east-1", name, r.Header.Get("Authorization"))
		}
		if dump := fmt.Sprint(r.URL, r.Header) + string(body); strings.Contains(dump, f.secretKey) {
			f.t.Errorf("fake route53: %s: the secret access key was sent", name)
		}
		f.mu.Lock()
		f.calls[name]++
		var ft *fault
		if q := f.faults[name]; len(q) > 0 {
			ft, f.faults[name] = &q[0], q[1:]
		}
		f.mu.Unlock()
		if ft != nil {
			writeAWSError(w, ft.status, ft.code, "injected "+ft.code)
			return
		}
		h(w, r, body)
	}
}

func writeAWSError(w http.ResponseWriter, status int, code, msg string) {
	type awsError struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}
	writeXML(w, status, awsError{Type: "Sender", Code: code, Message: msg, RequestID: "fake-request-id"})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// sortKey orders names as Route53 does: by labels from the right.
func sortKey(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func (f *fakeRoute53) pageSizeFor(r *http.Request) int {
	n := f.pageSize
	if v, err := strconv.Atoi(r.URL.Query().Get("maxitems")); err == nil && v > 0 && v < n {
		n = v
	}
	return n
}

func (f *fakeRoute53) listZones(w http.ResponseWriter, r *http.Request, _ []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	zones := slices.Clone(f.zones)
	slices.SortStableFunc(zones, func(a, b *fakeZone) int {
		return strings.Compare(sortKey(a.name)+" "+a.id, sortKey(b.name)+" "+b.id)
	})
	q := r.URL.Query()
	start := 0
	if dns := q.Get("dnsname"); dns != "" {
		from := sortKey(fqdn(dns)) + " "
		if id := q.Get("hostedzoneid"); id != "" {
			from += "/hostedzone/" + id
		}
		start = slices.IndexFunc(zones, func(z *fakeZone) bool { return sortKey(z.name)+" "+z.id >= from })
		if start < 0 {
			start = len(zones)
		}
	} else if q.Get("hostedzoneid") != "" {
		writeAWSError(w, http.StatusBadRequest, "InvalidInput", "hostedzoneid needs dnsname")
		return
	}
	n := f.pageSizeFor(r)
	page := zones[start:min(start+n, len(zones))]
	type response struct {
		XMLName          xml.Name        `xml:"ListHostedZonesByNameResponse"`
		NS               string          `xml:"xmlns,attr"`
		HostedZones      []xmlHostedZone `xml:"HostedZones>HostedZone"`
		DNSName          string          `xml:"DNSName,omitempty"`
		IsTruncated      bool            `xml:"IsTruncated"`
		NextDNSName      string          `xml:"NextDNSName,omitempty"`
		NextHostedZoneID string          `xml:"NextHostedZoneId,omitempty"`
		MaxItems         int             `xml:"MaxItems"`
	}
	out := response{NS: route53NS, DNSName: q.Get("dnsname"), MaxItems: n}
	for _, z := range page {
		out.HostedZones = append(out.HostedZones, xmlHostedZone{ID: z.id, Name: z.name, CallerReference: "ref-" + z.id, PrivateZone: z.private, RecordCount: len(z.sets)})
	}
	if next := start + n; next < len(zones) {
		out.IsTruncated, out.NextDNSName, out.NextHostedZoneID = true, zones[next].name, strings.TrimPrefix(zones[next].id, "/hostedzone/")
	}
	writeXML(w, http.StatusOK, out)
}

func (f *fakeRoute53) zone(id string) *fakeZone {
	for _, z := range f.zones {
		if z.id == "/hostedzone/"+id {
			return z
		}
	}
	return nil
}

func sortSets(sets []xmlRRSet) {
	slices.SortStableFunc(sets, func(a, b xmlRRSet) int {
		return strings.Compare(sortKey(a.Name)+" "+a.Type+" "+a.SetIdentifier, sortKey(b.Name)+" "+b.Type+" "+b.SetIdentifier)
	})
}

func (f *fakeRoute53) listSets(w http.ResponseWriter, r *http.Request, _ []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zone(r.PathValue("id"))
	if z == nil {
		writeAWSError(w, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+r.PathValue("id"))
		return
	}
	sortSets(z.sets)
	q := r.URL.Query()
	start := 0
	if name := q.Get("name"); name != "" {
		from := sortKey(fqdn(name)) + " " + q.Get("type") + " " + q.Get("identifier")
		start = slices.IndexFunc(z.sets, func(rs xmlRRSet) bool { return sortKey(rs.Name)+" "+rs.Type+" "+rs.SetIdentifier >= from })
		if start < 0 {
			start = len(z.sets)
		}
	}
	n := f.pageSizeFor(r)
	type response struct {
		XMLName              xml.Name   `xml:"ListResourceRecordSetsResponse"`
		NS                   string     `xml:"xmlns,attr"`
		Sets                 []xmlRRSet `xml:"ResourceRecordSets>ResourceRecordSet"`
		IsTruncated          bool       `xml:"IsTruncated"`
		NextRecordName       string     `xml:"NextRecordName,omitempty"`
		NextRecordType       string     `xml:"NextRecordType,omitempty"`
		NextRecordIdentifier string     `xml:"NextRecordIdentifier,omitempty"`
		MaxItems             int        `xml:"MaxItems"`
	}
	out := response{NS: route53NS, MaxItems: n}
	for _, rs := range z.sets[start:min(start+n, len(z.sets))] {
		out.Sets = append(out.Sets, rs.encoded())
	}
	if next := start + n; next < len(z.sets) {
		rs := z.sets[next]
		out.IsTruncated, out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier = true, rs.Name, rs.Type, rs.SetIdentifier
	}
	writeXML(w, http.StatusOK, out)
}

func compactSet(rs xmlRRSet) string {
	s := rs.Name + " " + rs.Type
	if rs.SetIdentifier != "" {
		s += " id=" + rs.SetIdentifier
	}
	if rs.AliasTarget != nil {
		s += " alias=" + rs.AliasTarget.DNSName
	}
	if rs.TTL != nil {
		s += " " + strconv.FormatInt(*rs.TTL, 10)
	}
	for _, v := range rs.Values {
		s += " " + v
	}
	return s
}

func sameSet(a, b xmlRRSet) bool {
	return compactSet(a) == compactSet(b) && (a.Weight == nil) == (b.Weight == nil) && (a.Weight == nil || *a.Weight == *b.Weight)
}

// changeSets validates a change batch like Route53 and applies it
// atomically, or answers InvalidChangeBatch in Route53's own format.
func (f *fakeRoute53) changeSets(w http.ResponseWriter, r *http.Request, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zone(r.PathValue("id"))
	if z == nil {
		writeAWSError(w, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+r.PathValue("id"))
		return
	}
	if f.beforeChange != nil {
		f.beforeChange(z)
	}
	var req xmlChangeRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeAWSError(w, http.StatusBadRequest, "InvalidInput", "malformed request: "+err.Error())
		return
	}
	batch := fakeBatch{zone: r.PathValue("id"), comment: req.Comment}
	for i := range req.Changes {
		req.Changes[i].Set = req.Changes[i].Set.decoded()
	}
	for _, c := range req.Changes {
		batch.changes = append(batch.changes, c.Action+" "+compactSet(c.Set))
	}
	sets := slices.Clone(z.sets)
	var problems []string
	for _, c := range req.Changes {
		rs := c.Set
		where := fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", rs.Name, rs.Type, rs.SetIdentifier)
		if p := validSet(rs, z.name); p != "" {
			problems = append(problems, p)
			continue
		}
		rs.Name = fqdn(rs.Name)
		i := slices.IndexFunc(sets, func(s xmlRRSet) bool {
			return s.Name == rs.Name && s.Type == rs.Type && s.SetIdentifier == rs.SetIdentifier
		})
		conflict := slices.ContainsFunc(sets, func(s xmlRRSet) bool {
			return s.Name == rs.Name && s.Type != rs.Type && (s.Type == "CNAME" || rs.Type == "CNAME")
		})
		switch c.Action {
		case "CREATE", "UPSERT":
			switch {
			case conflict:
				problems = append(problems, fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists", rs.Type, rs.Name))
			case i >= 0 && c.Action == "CREATE":
				problems = append(problems, "Tried to create resource record set "+where+" but it already exists")
			case i >= 0:
				sets[i] = rs
			default:
				sets = append(sets, rs)
			}
		case "DELETE":
			switch {
			case i < 0:
				problems = append(problems, "Tried to delete resource record set "+where+" but it was not found")
			case !sameSet(sets[i], rs):
				problems = append(problems, "Tried to delete resource record set "+where+" but the values provided do not match the current values")
			default:
				sets = slices.Delete(sets, i, i+1)
			}
		default:
			problems = append(problems, "unknown action "+c.Action)
		}
	}
	if len(req.Changes) == 0 {
		problems = append(problems, "the change batch has no changes")
	}
	batch.accepted = len(problems) == 0
	f.batches = append(f.batches, batch)
	if !batch.accepted {
		type invalid struct {
			XMLName  xml.Name `xml:"InvalidChangeBatch"`
			NS       string   `xml:"xmlns,attr"`
			Messages []string `xml:"Messages>Message"`
		}
		writeXML(w, http.StatusBadRequest, invalid{NS: route53NS, Messages: problems})
		return
	}
	z.sets = sets
	f.nextChange++
	id := fmt.Sprintf("C%06dFAKE", f.nextChange)
	f.pending[id] = f.pendingPolls
	status := "PENDING"
	type response struct {
		XMLName    xml.Name      `xml:"ChangeResourceRecordSetsResponse"`
		NS         string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}
	writeXML(w, http.StatusOK, response{NS: route53NS, ChangeInfo: xmlChangeInfo{ID: "/change/" + id, Status: status,
		SubmittedAt: time.Now().UTC().Format(time.RFC3339), Comment: req.Comment}})
}

// validSet checks a record set like Route53 does, returning the problem.
func validSet(rs xmlRRSet, zone string) string {
	name := fqdn(rs.Name)
	if name != zone && !strings.HasSuffix(name, "."+zone) {
		return fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rs.Name, zone)
	}
	if rs.AliasTarget == nil && (rs.TTL == nil || len(rs.Values) == 0) {
		return fmt.Sprintf("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=?, Name=%s, Type=%s, SetIdentifier=%s]", rs.Name, rs.Type, rs.SetIdentifier)
	}
	for _, v := range rs.Values {
		switch rs.Type {
		case "A":
			if ip, err := netip.ParseAddr(v); err != nil || !ip.Is4() {
				return fmt.Sprintf("Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '%s''", v)
			}
		case "TXT":
			if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return fmt.Sprintf("Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '%s''", v)
			}
		}
	}
	return ""
}

func (f *fakeRoute53) getChange(w http.ResponseWriter, r *http.Request, _ []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	left, ok := f.pending[id]
	if !ok {
		writeAWSError(w, http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist: "+id)
		return
	}
	status := "INSYNC"
	if left > 0 {
		status = "PENDING"
		f.pending[id] = left - 1
	}
	type response struct {
		XMLName    xml.Name      `xml:"GetChangeResponse"`
		NS         string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}
	writeXML(w, http.StatusOK, response{NS: route53NS, ChangeInfo: xmlChangeInfo{ID: "/change/" + id, Status: status,
		SubmittedAt: time.Now().UTC().Format(time.RFC3339)}})
}

func ptr[T any](v T) *T { return &v }
