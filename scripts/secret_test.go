package scripts

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func validJoin() JoinParams {
	return JoinParams{NodeName: "w1", NodeIP: "10.0.0.11", APIServerEndpoint: "10.0.0.10:6443", Token: testToken, CACertHashes: []string{testCAHash}}
}

func TestTokenNeverPrinted(t *testing.T) {
	p := validJoin()
	tok := string(testToken)
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outputs = append(outputs, fmt.Sprintf(verb, p), fmt.Sprintf(verb, p.Token), fmt.Sprintf(verb, &p))
	}
	outputs = append(outputs, fmt.Sprint(p), fmt.Sprintln(p.Token), p.Token.String())
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("join", "params", p, "token", p.Token)
	var text strings.Builder
	slog.New(slog.NewTextHandler(&text, nil)).Info("join", "params", p, "token", p.Token)
	outputs = append(outputs, string(j), string(y), logged.String(), text.String())
	for _, o := range outputs {
		if strings.Contains(o, tok) || strings.Contains(o, tok[7:]) {
			t.Errorf("token printed: %s", o)
		}
		if !strings.Contains(o, "[redacted]") && !strings.Contains(o, fmt.Sprintf("%x", "[redacted]")) && !strings.Contains(o, fmt.Sprintf("%X", "[redacted]")) {
			t.Errorf("no [redacted] in %s", o)
		}
	}
}

func TestJoinErrorsHoldNoToken(t *testing.T) {
	tok := string(testToken)
	bad := []func(*JoinParams){
		func(p *JoinParams) { p.NodeName = "W1" },
		func(p *JoinParams) { p.NodeIP = "10.0.0.300" },
		func(p *JoinParams) { p.APIServerEndpoint = "10.0.0.10" },
		func(p *JoinParams) { p.CACertHashes = nil },
		func(p *JoinParams) { p.CACertHashes = []string{tok} },
		func(p *JoinParams) { p.IgnorePreflightErrors = []string{tok + " x"} },
		func(p *JoinParams) { p.Token = Token(strings.ToUpper(tok)) },
		func(p *JoinParams) { p.Token = Token(tok + "\n") },
		func(p *JoinParams) { p.Token = Token("token " + tok) },
	}
	for i, change := range bad {
		p := validJoin()
		change(&p)
		_, err := KubeadmJoin(p)
		if err == nil {
			t.Errorf("case %d: accepted", i)
			continue
		}
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, tok) || strings.Contains(msg, tok[7:]) {
			t.Errorf("case %d: error holds the token: %v", i, err)
		}
	}
	b, err := KubeadmJoin(validJoin())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `token: "`+tok+`"`) {
		t.Fatalf("join configuration lacks the token:\n%s", b)
	}
}

// TestDecodeStrictErrorsHoldNoValues feeds the strict decoder YAML whose
// values are of the wrong type (yaml.v3 quotes such values in its errors)
// and unknown fields: its errors name fields, never values.
func TestDecodeStrictErrorsHoldNoValues(t *testing.T) {
	tok := string(testToken)
	cases := map[string]string{
		"wrong type":  "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    caCertHashes: " + tok + "\n",
		"secret part": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    caCertHashes: " + tok[7:] + "\n",
		"bad kind":    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n---\napiVersion: v1\nkind: " + "Secret\n",
		"bad yaml":    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery: [" + tok + "\n",
	}
	for name, doc := range cases {
		err := decodeStrict([]byte(doc))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		// yaml.v3 shortens long values in its errors to 7 characters:
		// look for the token's id and the start of its secret.
		if msg := err.Error(); strings.Contains(msg, tok[:6]) || strings.Contains(msg, tok[7:14]) {
			t.Errorf("%s: error holds a value: %v", name, err)
		}
	}
	err := decodeStrict([]byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnett: 10.0.0.0/8\n"))
	if err == nil || !strings.Contains(err.Error(), "podSubnett") || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("unknown field: error %v does not name the field and line", err)
	}
}
