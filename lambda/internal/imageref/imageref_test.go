package imageref

import (
	_ "crypto/sha512" // registers sha384/sha512 with go-digest, as the Lambda binary does through TLS
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	ecr     = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	ecrOth  = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
	ecrWest = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	ecrCN   = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
	ecrFIPS = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"
	ecrDS   = "123456789012.dkr-ecr.us-east-1.on.aws"      // dual-stack (IPv6)
	ecrDSF  = "123456789012.dkr-ecr-fips.us-east-1.on.aws" // dual-stack FIPS
	newD    = "sha256:b18964317305a4f423dd0426ca9bb8952a0753c7c882480feb4462d3927b476d"
	oldD    = "sha256:1016926d84bdc6168f49a326489db181a5990a3cc992321e0d505242ca5d9ce9"
	devD    = "sha256:52c71d4dce65c9636341f58553a691759e5e699e58dc495e68d6c2d1710d9885"
	prod    = "content-marketing-swarm-backend"
	dev     = "content-marketing-swarm-dev-backend"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr string // substring of the error; "" means no error
	}{
		{in: ecr + "/app", want: Ref{Host: ecr, Path: "app"}},
		{in: ecr + "/app:latest", want: Ref{Host: ecr, Path: "app", Tag: "latest"}},
		{in: ecr + "/team/app:v1.2.3@" + newD, want: Ref{Host: ecr, Path: "team/app", Tag: "v1.2.3", Digest: newD}},
		{in: ecr + "/app@" + newD, want: Ref{Host: ecr, Path: "app", Digest: newD}},
		{in: "nginx", want: Ref{Host: "docker.io", Path: "library/nginx"}},
		{in: "nginx:1.27", want: Ref{Host: "docker.io", Path: "library/nginx", Tag: "1.27"}},
		{in: "bitnami/redis", want: Ref{Host: "docker.io", Path: "bitnami/redis"}},
		{in: "docker.io/library/nginx:latest", want: Ref{Host: "docker.io", Path: "library/nginx", Tag: "latest"}},
		{in: "public.ecr.aws/nginx/nginx:stable", want: Ref{Host: "public.ecr.aws", Path: "nginx/nginx", Tag: "stable"}},
		{in: "localhost:5000/a/b/c", want: Ref{Host: "localhost:5000", Path: "a/b/c"}},
		{in: ecr + ":443/app", want: Ref{Host: ecr + ":443", Path: "app"}},
		{in: ecrDS + "/team/app:v1@" + newD, want: Ref{Host: ecrDS, Path: "team/app", Tag: "v1", Digest: newD}},
		{in: ecrDSF + "/app", want: Ref{Host: ecrDSF, Path: "app"}},
		{in: "123456789012.DKR.ECR.us-east-1.amazonaws.com/app", want: Ref{Host: "123456789012.DKR.ECR.us-east-1.amazonaws.com", Path: "app"}},
		{in: "", wantErr: `image reference ""`},
		{in: ecr + "/App", wantErr: "must be lowercase"},
		{in: ecr + "/app/../app-dev", wantErr: "invalid reference format"},
		{in: ecr + "/./app", wantErr: "invalid reference format"},
		{in: ecr + "/app//x", wantErr: "invalid reference format"},
		{in: ecr + "/app/", wantErr: "invalid reference format"},
		{in: ecr + "/аpp", wantErr: "invalid reference format"},         // Cyrillic а
		{in: ecr + "/ａｐｐ", wantErr: "invalid reference format"},         // fullwidth
		{in: ecr + "/ap\u200dp", wantErr: "invalid reference format"},   // zero-width joiner
		{in: ecr + "/app:lat est", wantErr: "invalid reference format"}, // space in tag
		{in: ecr + "/app:" + strings.Repeat("t", 129), wantErr: "invalid reference format"},
		{in: ecr + "/app@sha256:B18964317305A4F423DD0426CA9BB8952A0753C7C882480FEB4462D3927B476D", wantErr: "image reference"},
		{in: ecr + "/app@sha256:abc", wantErr: "image reference"},
		{in: ecr + "/app@sha512:" + strings.Repeat("a", 128), wantErr: `digest algorithm "sha512" is not supported (only sha256)`},
		{in: ecr + "/app@sha384:" + strings.Repeat("a", 96), wantErr: `digest algorithm "sha384" is not supported (only sha256)`},
		{in: strings.TrimPrefix(newD, "sha256:"), wantErr: "cannot specify 64-byte hexadecimal strings"},
		{in: ecr + "/" + strings.Repeat("a", 300), wantErr: "image reference " + `"` + ecr},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseErrorIsTruncated(t *testing.T) {
	_, err := Parse(strings.Repeat("A", 100000))
	if err == nil || len(err.Error()) > 600 {
		t.Fatalf("error for a 100000-byte input should be short, got %d bytes", len(err.Error()))
	}
}

func TestRefMethods(t *testing.T) {
	tests := []struct {
		ref        Ref
		tracks     string
		ok         bool
		repository string
		str        string
	}{
		{Ref{Host: ecr, Path: "app"}, "latest", true, ecr + "/app", ecr + "/app"},
		{Ref{Host: ecr, Path: "app", Tag: "v1"}, "v1", true, ecr + "/app", ecr + "/app:v1"},
		{Ref{Host: ecr, Path: "app", Tag: "v1", Digest: newD}, "v1", true, ecr + "/app", ecr + "/app:v1@" + newD},
		{Ref{Host: ecr, Path: "app", Digest: newD}, "", false, ecr + "/app", ecr + "/app@" + newD},
		{Ref{Host: "docker.io", Path: "library/nginx"}, "latest", true, "docker.io/library/nginx", "docker.io/library/nginx"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			tag, ok := tt.ref.Tracks()
			got := []any{tag, ok, tt.ref.Repository(), tt.ref.String()}
			want := []any{tt.tracks, tt.ok, tt.repository, tt.str}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			back, err := Parse(tt.ref.String())
			if err != nil {
				t.Fatalf("String() does not parse back: %v", err)
			}
			if diff := cmp.Diff(tt.ref, back); diff != "" {
				t.Errorf("String() round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPinned(t *testing.T) {
	if got, want := Pinned(ecr+"/"+prod, "latest", newD), ecr+"/"+prod+":latest@"+newD; got != want {
		t.Errorf("Pinned = %q, want %q", got, want)
	}
	if got, want := Pinned(ecr+"/app", "", newD), ecr+"/app@"+newD; got != want {
		t.Errorf("Pinned without tag = %q, want %q", got, want)
	}
	ref, err := Parse(Pinned(ecr+"/team/app", "v1", newD))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Ref{Host: ecr, Path: "team/app", Tag: "v1", Digest: newD}, ref); diff != "" {
		t.Errorf("Pinned does not parse back (-want +got):\n%s", diff)
	}
}

func TestParseECRHost(t *testing.T) {
	const acct = "123456789012"
	reg := func(region, partition string, form Form) Registry {
		return Registry{Account: acct, Region: region, Partition: partition, Form: form}
	}
	tests := []struct {
		host string
		want Registry
		ok   bool
	}{
		// Every documented form.
		{ecr, reg("us-east-1", "aws", FormIPv4), true},
		{ecrWest, reg("us-west-2", "aws", FormIPv4), true},
		{ecrFIPS, reg("us-east-1", "aws", FormFIPS), true},
		{ecrDS, reg("us-east-1", "aws", FormDualStack), true},
		{ecrDSF, reg("us-east-1", "aws", FormDualStackFIPS), true},
		{"123456789012.dkr-ecr.eu-central-1.on.aws", reg("eu-central-1", "aws", FormDualStack), true},
		{ecrCN, reg("cn-north-1", "aws-cn", FormIPv4), true},
		{"123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", reg("cn-northwest-1", "aws-cn", FormIPv4), true},
		{"123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", reg("us-gov-west-1", "aws-us-gov", FormIPv4), true},
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", reg("us-gov-west-1", "aws-us-gov", FormFIPS), true},
		{"123456789012.dkr-ecr.us-gov-east-1.on.aws", reg("us-gov-east-1", "aws-us-gov", FormDualStack), true},
		{"123456789012.dkr-ecr-fips.us-gov-east-1.on.aws", reg("us-gov-east-1", "aws-us-gov", FormDualStackFIPS), true},
		{"123456789012.dkr.ecr.ap-southeast-5.amazonaws.com", reg("ap-southeast-5", "aws", FormIPv4), true},
		{"123456789012.dkr.ecr.il-central-1.amazonaws.com", reg("il-central-1", "aws", FormIPv4), true},

		// Not ECR private registries.
		{"public.ecr.aws", Registry{}, false},
		{"docker.io", Registry{}, false},
		{"", Registry{}, false},
		{"dkr-ecr.us-east-1.on.aws", Registry{}, false}, // no account
		{"ecr.us-east-1.api.aws", Registry{}, false},    // the API's dual-stack endpoint, not a registry
		{"123456789012.api.ecr.us-east-1.amazonaws.com", Registry{}, false},

		// Hosts that contain or extend a form.
		{ecr + ".evil.com", Registry{}, false},
		{ecrDS + ".evil.com", Registry{}, false},
		{"evil.com/" + ecr, Registry{}, false},
		{"x" + ecr, Registry{}, false},
		{"x." + ecrDS, Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.com", Registry{}, false},
		{"123456789012.dkr.ecr.evil.com.us-east-1.amazonaws.com", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.evil.amazonaws.com", Registry{}, false},
		{"123456789012.x.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-1.on.aws.cn", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-1.on.awsx", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-1.aws", Registry{}, false},
		{"attacker.com.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.attacker.net", Registry{}, false},
		{ecr + ":443", Registry{}, false},
		{ecrDS + ":443", Registry{}, false},
		{ecr + ".", Registry{}, false},
		{ecrDS + ".", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com\n", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.co", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.cn.evil", Registry{}, false},

		// A service label or suffix that is not one of the documented pairs.
		{"123456789012.dkr-ecr.us-east-1.amazonaws.com", Registry{}, false},          // dual-stack label, IPv4 suffix
		{"123456789012.dkr.ecr.us-east-1.on.aws", Registry{}, false},                 // IPv4 label, dual-stack suffix
		{"123456789012.dkr-ecr-fips.us-east-1.amazonaws.com", Registry{}, false},     // dual-stack FIPS label, IPv4 suffix
		{"123456789012.dkr.ecr-fips.us-east-1.on.aws", Registry{}, false},            // FIPS label, dual-stack suffix
		{"123456789012.dkr_ecr.us-east-1.on.aws", Registry{}, false},                 // underscore
		{"123456789012.dkrecr.us-east-1.on.aws", Registry{}, false},                  // no separator
		{"123456789012.dkr-ecr-fips-x.us-east-1.on.aws", Registry{}, false},          // extra word
		{"123456789012.ecr-fips.dkr.us-east-1.amazonaws.com", Registry{}, false},     // words swapped
		{"123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn", Registry{}, false}, // no FIPS in China
		{"123456789012.dkr-ecr.cn-north-1.on.aws", Registry{}, false},                // no documented China dual-stack
		{"123456789012.dkr-ecr-fips.cn-north-1.on.aws", Registry{}, false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.cn", Registry{}, false}, // commercial region on the China domain
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com", Registry{}, false},   // China region on the commercial domain
		{"123456789012.dkr.ecr.us-gov-west-1.amazonaws.com.cn", Registry{}, false},

		// Case, account and region.
		{"123456789012.DKR.ECR.us-east-1.amazonaws.com", Registry{}, false},
		{"123456789012.DKR-ECR.us-east-1.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-1.ON.AWS", Registry{}, false},
		{"123456789012.dkr.ecr.US-EAST-1.amazonaws.com", Registry{}, false},
		{"12345678901.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},
		{"1234567890123.dkr-ecr.us-east-1.on.aws", Registry{}, false},
		{"12345678901a.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},
		{"１２３456789012.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false}, // fullwidth digits
		{"123456789012.dkr.ecr.useast1.amazonaws.com", Registry{}, false},
		{"123456789012.dkr-ecr.us-east.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-0.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-01.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east-123.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.use-east-1.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.u-east-1.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us--east-1.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.us-east1-1.on.aws", Registry{}, false},
		{"123456789012.dkr-ecr.1-east-1.on.aws", Registry{}, false},
		{"123456789012.dkr.ecr.us-iso-east-1.amazonaws.com", Registry{}, false}, // isolated partitions use other suffixes
		{"123456789012.dkr-ecr.us-isob-east-1.on.aws", Registry{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := ParseECRHost(tt.host)
			if ok != tt.ok {
				t.Fatalf("ParseECRHost(%q) ok = %v, want %v", tt.host, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseECRHost(%q) (-want +got):\n%s", tt.host, diff)
			}
			if ok && got.Host() != tt.host {
				t.Errorf("ParseECRHost(%q).Host() = %q, want the host back", tt.host, got.Host())
			}
		})
	}
}

func TestFormPredicates(t *testing.T) {
	type row struct {
		Name            string
		FIPS, DualStack bool
	}
	var got []row
	for _, f := range []Form{FormIPv4, FormFIPS, FormDualStack, FormDualStackFIPS, Form(9)} {
		got = append(got, row{f.String(), f.FIPS(), f.DualStack()})
	}
	want := []row{{"ipv4", false, false}, {"fips", true, false}, {"dual-stack", false, true}, {"dual-stack-fips", true, true}, {"Form(9)", false, false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSameRegistry(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{ecr, ecr, true},
		{ecr, ecrDS, true},
		{ecr, ecrFIPS, true},
		{ecr, ecrDSF, true},
		{ecrDS, ecrDSF, true},
		{"docker.io", "docker.io", true},
		{"localhost:5000", "localhost:5000", true},
		{"123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", "123456789012.dkr-ecr-fips.us-gov-west-1.on.aws", true},
		{ecr, ecrOth, false},
		{ecrDS, "210987654321.dkr-ecr.us-east-1.on.aws", false},
		{ecr, ecrWest, false},
		{ecrDS, "123456789012.dkr-ecr.us-west-2.on.aws", false},
		{ecr, ecrCN, false},
		{ecr, "123456789012.DKR-ECR.us-east-1.on.aws", false},
		{ecr, ecrDS + ".evil.com", false},
		{ecr, ecrDS + ":443", false},
		{ecr, "public.ecr.aws", false},
		{"docker.io", "index.docker.io", false},
		{"", "", true},
		{"", ecr, false},
	}
	for _, tt := range tests {
		for _, ab := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			if got := SameRegistry(ab[0], ab[1]); got != tt.want {
				t.Errorf("SameRegistry(%q, %q) = %v, want %v", ab[0], ab[1], got, tt.want)
			}
		}
	}
}

func TestECRHost(t *testing.T) {
	for _, tt := range []struct{ account, region, want string }{
		{"123456789012", "us-east-1", ecr},
		{"123456789012", "cn-north-1", ecrCN},
		{"123456789012", "us-gov-west-1", "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"},
	} {
		got := ECRHost(tt.account, tt.region)
		if got != tt.want {
			t.Errorf("ECRHost(%q, %q) = %q, want %q", tt.account, tt.region, got, tt.want)
		}
		reg, ok := ParseECRHost(got)
		if !ok || reg.Account != tt.account || reg.Region != tt.region || reg.Form != FormIPv4 {
			t.Errorf("ParseECRHost(ECRHost(%q, %q)) = %+v, %v", tt.account, tt.region, reg, ok)
		}
	}
}

func TestPushedPinnedAt(t *testing.T) {
	p := Pushed{Host: ecr, Path: "team/app", Tag: "v1", Digest: newD}
	got := []string{p.Pinned(), p.PinnedAt(ecrDS), p.PinnedAt(ecrFIPS)}
	want := []string{ecr + "/team/app:v1@" + newD, ecrDS + "/team/app:v1@" + newD, ecrFIPS + "/team/app:v1@" + newD}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCompare(t *testing.T) {
	prodT := Pushed{Host: ecr, Path: prod, Tag: "latest", Digest: newD}
	devT := Pushed{Host: ecr, Path: dev, Tag: "latest", Digest: devD}
	appT := Pushed{Host: ecr, Path: "app", Tag: "latest", Digest: newD}
	teamT := Pushed{Host: ecr, Path: "team/app", Tag: "v2", Digest: newD}
	cnT := Pushed{Host: ecrCN, Path: "app", Tag: "latest", Digest: newD}
	fipsT := Pushed{Host: ecrFIPS, Path: "app", Tag: "latest", Digest: newD}
	hubT := Pushed{Host: "docker.io", Path: "library/nginx", Tag: "latest", Digest: newD}
	backendT := Pushed{Host: ecr, Path: "backend", Tag: "latest", Digest: newD}

	r := func(host, path, tag, digest string) Ref { return Ref{Host: host, Path: path, Tag: tag, Digest: digest} }
	tests := []struct {
		name   string
		target Pushed
		image  string
		want   Verdict
	}{
		// The incident: two repositories whose names differ by "dev-", in both directions.
		{"incident prod target, prod image", prodT, ecr + "/" + prod + ":latest",
			Verdict{Match: true, Ref: r(ecr, prod, "latest", "")}},
		{"incident prod target, dev image", prodT, ecr + "/" + dev + ":latest",
			Verdict{NearMiss: true, Why: "different repository: " + dev + " is not " + prod, Ref: r(ecr, dev, "latest", "")}},
		{"incident dev target, prod image", devT, ecr + "/" + prod + ":latest",
			Verdict{NearMiss: true, Why: "different repository: " + prod + " is not " + dev, Ref: r(ecr, prod, "latest", "")}},
		{"incident dev target, dev image", devT, ecr + "/" + dev,
			Verdict{Match: true, Ref: r(ecr, dev, "", "")}},
		{"incident prod target, dev image pinned", prodT, ecr + "/" + dev + ":latest@" + devD,
			Verdict{NearMiss: true, Why: "different repository: " + dev + " is not " + prod, Ref: r(ecr, dev, "latest", devD)}},

		// Tags and digests.
		{"no tag tracks latest", prodT, ecr + "/" + prod,
			Verdict{Match: true, Ref: r(ecr, prod, "", "")}},
		{"tag and old digest: re-pin", prodT, ecr + "/" + prod + ":latest@" + oldD,
			Verdict{Match: true, Ref: r(ecr, prod, "latest", oldD)}},
		{"tag and new digest: already pinned", prodT, ecr + "/" + prod + ":latest@" + newD,
			Verdict{Match: true, AlreadyPinned: true, Ref: r(ecr, prod, "latest", newD)}},
		{"digest only, even the new one", prodT, ecr + "/" + prod + "@" + newD,
			Verdict{NearMiss: true, Why: "pinned by digest without a tag", Ref: r(ecr, prod, "", newD)}},
		{"digest only, old", prodT, ecr + "/" + prod + "@" + oldD,
			Verdict{NearMiss: true, Why: "pinned by digest without a tag", Ref: r(ecr, prod, "", oldD)}},
		{"other tag", prodT, ecr + "/" + prod + ":stable",
			Verdict{NearMiss: true, Why: "tracks tag stable, not latest", Ref: r(ecr, prod, "stable", "")}},
		{"other tag pinned", prodT, ecr + "/" + prod + ":stable@" + newD,
			Verdict{NearMiss: true, Why: "tracks tag stable, not latest", Ref: r(ecr, prod, "stable", newD)}},
		{"untagged image, target tag v2", teamT, ecr + "/team/app",
			Verdict{NearMiss: true, Why: "tracks tag latest, not v2", Ref: r(ecr, "team/app", "", "")}},
		{"tag is case-sensitive", teamT, ecr + "/team/app:V2",
			Verdict{NearMiss: true, Why: "tracks tag V2, not v2", Ref: r(ecr, "team/app", "V2", "")}},

		// Other registries.
		{"other account", prodT, ecrOth + "/" + prod + ":latest",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecrOth, Ref: r(ecrOth, prod, "latest", "")}},
		{"other region", prodT, ecrWest + "/" + prod + ":latest",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecrWest, Ref: r(ecrWest, prod, "latest", "")}},
		{"China target, China image", cnT, ecrCN + "/app",
			Verdict{Match: true, Ref: r(ecrCN, "app", "", "")}},
		{"China target, commercial image", cnT, ecr + "/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecr, Ref: r(ecr, "app", "", "")}},
		{"commercial target, China image", appT, ecrCN + "/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecrCN, Ref: r(ecrCN, "app", "", "")}},
		{"FIPS target, FIPS image", fipsT, ecrFIPS + "/app:latest",
			Verdict{Match: true, Ref: r(ecrFIPS, "app", "latest", "")}},

		// Every name of the registry: another documented form of the same account, region and
		// partition is the same repository; anything that merely resembles one is not.
		{"IPv4 target, FIPS image", appT, ecrFIPS + "/app:latest",
			Verdict{Match: true, Ref: r(ecrFIPS, "app", "latest", "")}},
		{"IPv4 target, dual-stack image", appT, ecrDS + "/app:latest",
			Verdict{Match: true, Ref: r(ecrDS, "app", "latest", "")}},
		{"IPv4 target, dual-stack FIPS image", appT, ecrDSF + "/app",
			Verdict{Match: true, Ref: r(ecrDSF, "app", "", "")}},
		{"dual-stack image already pinned", appT, ecrDS + "/app:latest@" + newD,
			Verdict{Match: true, AlreadyPinned: true, Ref: r(ecrDS, "app", "latest", newD)}},
		{"dual-stack image pinned to an old digest", appT, ecrDS + "/app:latest@" + oldD,
			Verdict{Match: true, Ref: r(ecrDS, "app", "latest", oldD)}},
		{"dual-stack target, IPv4 image", Pushed{Host: ecrDS, Path: "app", Tag: "latest", Digest: newD}, ecr + "/app",
			Verdict{Match: true, Ref: r(ecr, "app", "", "")}},
		{"FIPS target, dual-stack image", fipsT, ecrDS + "/app:latest",
			Verdict{Match: true, Ref: r(ecrDS, "app", "latest", "")}},
		{"GovCloud target, dual-stack FIPS image", Pushed{Host: "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", Path: "app", Tag: "latest"},
			"123456789012.dkr-ecr-fips.us-gov-west-1.on.aws/app",
			Verdict{Match: true, Ref: r("123456789012.dkr-ecr-fips.us-gov-west-1.on.aws", "app", "", "")}},
		{"dual-stack, look-alike path", prodT, ecrDS + "/" + dev + ":latest",
			Verdict{NearMiss: true, Why: "different repository: " + dev + " is not " + prod, Ref: r(ecrDS, dev, "latest", "")}},
		{"dual-stack, other tag", prodT, ecrDS + "/" + prod + ":stable",
			Verdict{NearMiss: true, Why: "tracks tag stable, not latest", Ref: r(ecrDS, prod, "stable", "")}},
		{"dual-stack, digest only", prodT, ecrDS + "/" + prod + "@" + newD,
			Verdict{NearMiss: true, Why: "pinned by digest without a tag", Ref: r(ecrDS, prod, "", newD)}},
		{"dual-stack, other account", appT, "210987654321.dkr-ecr.us-east-1.on.aws/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 210987654321.dkr-ecr.us-east-1.on.aws",
				Ref: r("210987654321.dkr-ecr.us-east-1.on.aws", "app", "", "")}},
		{"dual-stack, other region", appT, "123456789012.dkr-ecr.us-west-2.on.aws/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 123456789012.dkr-ecr.us-west-2.on.aws",
				Ref: r("123456789012.dkr-ecr.us-west-2.on.aws", "app", "", "")}},
		{"dual-stack host extended", appT, ecrDS + ".evil.com/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecrDS + ".evil.com", Ref: r(ecrDS+".evil.com", "app", "", "")}},
		{"dual-stack host with an extra label", appT, "x." + ecrDS + "/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: x." + ecrDS, Ref: r("x."+ecrDS, "app", "", "")}},
		{"dual-stack label under the IPv4 suffix", appT, "123456789012.dkr-ecr.us-east-1.amazonaws.com/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 123456789012.dkr-ecr.us-east-1.amazonaws.com",
				Ref: r("123456789012.dkr-ecr.us-east-1.amazonaws.com", "app", "", "")}},
		{"dkr.ecr inside another domain", appT, "123456789012.dkr.ecr.us-east-1.amazonaws.com.attacker.net/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com.attacker.net",
				Ref: r("123456789012.dkr.ecr.us-east-1.amazonaws.com.attacker.net", "app", "", "")}},
		{"dual-stack with a port", appT, ecrDS + ":443/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecrDS + ":443", Ref: r(ecrDS+":443", "app", "", "")}},
		{"dual-stack upper case", appT, "123456789012.DKR-ECR.us-east-1.on.aws/app",
			Verdict{NearMiss: true, Why: "registry host 123456789012.DKR-ECR.us-east-1.on.aws differs from " + ecrDS + " (a name of the same registry) in letter case",
				Ref: r("123456789012.DKR-ECR.us-east-1.on.aws", "app", "", "")}},
		{"dual-stack upper case, other account", appT, "210987654321.DKR-ECR.us-east-1.on.aws/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 210987654321.DKR-ECR.us-east-1.on.aws",
				Ref: r("210987654321.DKR-ECR.us-east-1.on.aws", "app", "", "")}},
		{"dual-stack, a region that is not one", appT, "123456789012.dkr-ecr.us-east.on.aws/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 123456789012.dkr-ecr.us-east.on.aws",
				Ref: r("123456789012.dkr-ecr.us-east.on.aws", "app", "", "")}},
		{"China target, undocumented China dual-stack", cnT, "123456789012.dkr-ecr.cn-north-1.on.aws/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: 123456789012.dkr-ecr.cn-north-1.on.aws",
				Ref: r("123456789012.dkr-ecr.cn-north-1.on.aws", "app", "", "")}},
		{"dual-stack, unrelated repository", backendT, ecrDS + "/frontend",
			Verdict{Ref: r(ecrDS, "frontend", "", "")}},
		{"port in host", appT, ecr + ":443/app:latest",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecr + ":443", Ref: r(ecr+":443", "app", "latest", "")}},
		{"upper-case host", appT, "123456789012.DKR.ECR.us-east-1.amazonaws.com/app",
			Verdict{NearMiss: true, Why: "registry host 123456789012.DKR.ECR.us-east-1.amazonaws.com differs from " + ecr + " in letter case",
				Ref: r("123456789012.DKR.ECR.us-east-1.amazonaws.com", "app", "", "")}},
		{"look-alike host", appT, ecr + ".evil.com/app",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecr + ".evil.com", Ref: r(ecr+".evil.com", "app", "", "")}},

		// Docker Hub and ECR Public.
		{"Docker Hub short name vs ECR backend: unrelated", backendT, "nginx",
			Verdict{Ref: r("docker.io", "library/nginx", "", "")}},
		{"Docker Hub short name matches Docker Hub target", hubT, "nginx",
			Verdict{Match: true, Ref: r("docker.io", "library/nginx", "", "")}},
		{"Docker Hub long form matches", hubT, "docker.io/library/nginx:latest",
			Verdict{Match: true, Ref: r("docker.io", "library/nginx", "latest", "")}},
		{"Docker Hub other user", hubT, "someone/nginx",
			Verdict{NearMiss: true, Why: "different repository: someone/nginx is not library/nginx", Ref: r("docker.io", "someone/nginx", "", "")}},
		{"ECR mirror of Docker Hub image", hubT, ecr + "/nginx",
			Verdict{NearMiss: true, Why: "same repository name in another registry: " + ecr + "/nginx", Ref: r(ecr, "nginx", "", "")}},
		{"public.ecr.aws with same name", prodT, "public.ecr.aws/acme/" + prod + ":latest",
			Verdict{NearMiss: true, Why: "same repository name in another registry: public.ecr.aws/acme/" + prod, Ref: r("public.ecr.aws", "acme/"+prod, "latest", "")}},
		{"public.ecr.aws unrelated", prodT, "public.ecr.aws/nginx/nginx:latest",
			Verdict{Ref: r("public.ecr.aws", "nginx/nginx", "latest", "")}},

		// Paths with several segments and look-alikes on the same registry.
		{"several segments match", teamT, ecr + "/team/app:v2",
			Verdict{Match: true, Ref: r(ecr, "team/app", "v2", "")}},
		{"other namespace, same name", teamT, ecr + "/other/app:v2",
			Verdict{NearMiss: true, Why: "different repository: other/app is not team/app", Ref: r(ecr, "other/app", "v2", "")}},
		{"no namespace", teamT, ecr + "/app:v2",
			Verdict{NearMiss: true, Why: "different repository: app is not team/app", Ref: r(ecr, "app", "v2", "")}},
		{"deeper path", teamT, ecr + "/team/app/worker:v2",
			Verdict{NearMiss: true, Why: "different repository: team/app/worker is not team/app", Ref: r(ecr, "team/app/worker", "v2", "")}},
		{"suffix -dev", appT, ecr + "/app-dev",
			Verdict{NearMiss: true, Why: "different repository: app-dev is not app", Ref: r(ecr, "app-dev", "", "")}},
		{"prefix dev-", appT, ecr + "/dev-app",
			Verdict{NearMiss: true, Why: "different repository: dev-app is not app", Ref: r(ecr, "dev-app", "", "")}},
		{"one letter off", appT, ecr + "/api",
			Verdict{NearMiss: true, Why: "different repository: api is not app", Ref: r(ecr, "api", "", "")}},
		{"unrelated repository on the same registry", backendT, ecr + "/frontend",
			Verdict{Ref: r(ecr, "frontend", "", "")}},
		{"prefix that is a word of the target", backendT, ecr + "/content-marketing-swarm-backend",
			Verdict{NearMiss: true, Why: "different repository: content-marketing-swarm-backend is not backend", Ref: r(ecr, prod, "", "")}},
		{"short unrelated names", Pushed{Host: ecr, Path: "ab", Tag: "latest"}, ecr + "/xyz",
			Verdict{Ref: r(ecr, "xyz", "", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compare(tt.target, tt.image)
			if err != nil {
				t.Fatalf("Compare(%+v, %q): %v", tt.target, tt.image, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compare(%+v, %q) (-want +got):\n%s", tt.target, tt.image, diff)
			}
		})
	}
}

func TestCompareRejectsWhatDoesNotParse(t *testing.T) {
	appT := Pushed{Host: ecr, Path: "app", Tag: "latest", Digest: newD}
	prodT := Pushed{Host: ecr, Path: prod, Tag: "latest", Digest: newD}
	for _, image := range []string{
		ecr + "/app/../app-dev",
		ecr + "/app/./x",
		ecr + "/./app",
		ecr + "/app//x",
		ecr + "//app",
		ecr + "/app/",
		ecr + "/APP",
		ecr + "/App:latest",
		ecr + "/аpp",        // Cyrillic а (U+0430)
		ecr + "/ａpp",        // fullwidth a
		ecr + "/ap\u200dp",  // zero-width joiner
		ecr + "/app\u00a0",  // no-break space
		ecr + "/\u0430pp",   // Cyrillic again, escaped
		ecr + "/app:lätest", // non-ASCII tag
		ecr + "/app@sha256:" + strings.Repeat("A", 64),
		ecr + "/app@sha256:" + strings.Repeat("a", 63),
		ecr + "/app@md5:d41d8cd98f00b204e9800998ecf8427e",
		ecr + "/app@sha512:" + strings.Repeat("a", 128),
		ecr + "/app:@" + newD,
		ecr + "/app:latest ",
		" " + ecr + "/app",
		"",
		":latest",
		"@" + newD,
		ecr + "/" + strings.Replace(prod, "a", "а", 1),
	} {
		for _, target := range []Pushed{appT, prodT} {
			v, err := Compare(target, image)
			if err == nil {
				t.Errorf("Compare(%q, %q) = %+v, want a parse error", target.Path, image, v)
				continue
			}
			if v != (Verdict{}) {
				t.Errorf("Compare(%q, %q) returned a verdict with its error: %+v", target.Path, image, v)
			}
			if !strings.Contains(err.Error(), "image reference") {
				t.Errorf("error %q does not say what failed", err)
			}
		}
	}
}

// sameRegistryForTest is the test's own statement of "the same registry": the byte-equal host,
// or two hosts spelled exactly as one of the four documented forms with the same account,
// region and DNS suffix family. It does not use ParseECRHost's regular expression.
func sameRegistryForTest(a, b string) bool {
	if a == b {
		return true
	}
	id := func(h string) (string, bool) {
		for _, f := range []struct{ label, suffix, family string }{
			{".dkr.ecr.", ".amazonaws.com", "amazonaws.com"},
			{".dkr.ecr-fips.", ".amazonaws.com", "amazonaws.com"},
			{".dkr-ecr.", ".on.aws", "amazonaws.com"},
			{".dkr-ecr-fips.", ".on.aws", "amazonaws.com"},
			{".dkr.ecr.", ".amazonaws.com.cn", "amazonaws.com.cn"},
		} {
			acct, rest, ok := strings.Cut(h, f.label)
			if !ok || len(acct) != 12 || strings.Trim(acct, "0123456789") != "" {
				continue
			}
			region, ok := strings.CutSuffix(rest, f.suffix)
			if ok && region != "" && !strings.Contains(region, ".") && strings.ToLower(region) == region {
				return acct + "/" + region + "/" + f.family, true
			}
		}
		return "", false
	}
	ia, oka := id(a)
	ib, okb := id(b)
	return oka && okb && ia == ib
}

// A Match must never be produced by anything but the same registry (byte-equal host, or
// another documented name of it) and a byte-equal path.
func checkCompareInvariants(t *testing.T, target Pushed, image string, v Verdict, err error) {
	t.Helper()
	if err != nil {
		if v != (Verdict{}) {
			t.Fatalf("Compare(%+v, %q) returned a verdict with its error: %+v", target, image, v)
		}
		return
	}
	if v.Match {
		if v.Ref.Path != target.Path || !sameRegistryForTest(v.Ref.Host, target.Host) {
			t.Fatalf("Compare(%+v, %q) matched a different repository %q", target, image, v.Ref.Repository())
		}
		if tag, ok := v.Ref.Tracks(); !ok || tag != target.Tag {
			t.Fatalf("Compare(%+v, %q) matched though it tracks %q, %v", target, image, tag, ok)
		}
		if v.NearMiss || v.Why != "" {
			t.Fatalf("Compare(%+v, %q) is both a match and a near miss: %+v", target, image, v)
		}
	}
	if v.AlreadyPinned && (!v.Match || v.Ref.Digest != target.Digest || target.Digest == "") {
		t.Fatalf("Compare(%+v, %q): AlreadyPinned without a match on the digest: %+v", target, image, v)
	}
	if v.NearMiss != (v.Why != "") {
		t.Fatalf("Compare(%+v, %q): NearMiss and Why disagree: %+v", target, image, v)
	}
}

func FuzzCompare(f *testing.F) {
	seeds := []struct{ host, path, tag, digest, image string }{
		{ecr, prod, "latest", newD, ecr + "/" + dev + ":latest"},
		{ecr, dev, "latest", devD, ecr + "/" + prod},
		{ecr, "app", "latest", newD, ecr + "/app:latest@" + newD},
		{ecr, "app", "latest", newD, ecr + "/app@" + newD},
		{ecr, "team/app", "v1", newD, ecr + "/other/app:v1"},
		{ecrCN, "app", "latest", newD, ecr + "/app"},
		{"docker.io", "library/nginx", "latest", "", "nginx"},
		{ecr, "app", "latest", newD, "123456789012.DKR.ECR.us-east-1.amazonaws.com/app"},
		{ecr, "app", "latest", newD, ecr + "/app/../app-dev"},
		{ecr, "app", "", "", ecr + "/app"},
		{ecr, "app", "latest", newD, ecrDS + "/app:latest"},
		{ecr, "app", "latest", newD, ecrDSF + "/app:latest@" + newD},
		{ecr, "app", "latest", newD, ecrFIPS + "/app"},
		{ecrDS, prod, "latest", newD, ecr + "/" + dev},
		{ecr, "app", "latest", newD, ecrDS + ".evil.com/app"},
		{ecr, "app", "latest", newD, "123456789012.dkr-ecr.us-east-1.amazonaws.com/app"},
		{ecrCN, "app", "latest", newD, "123456789012.dkr-ecr.cn-north-1.on.aws/app"},
		{"", "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.host, s.path, s.tag, s.digest, s.image)
	}
	f.Fuzz(func(t *testing.T, host, path, tag, digest, image string) {
		target := Pushed{Host: host, Path: path, Tag: tag, Digest: digest}
		v, err := Compare(target, image)
		checkCompareInvariants(t, target, image, v, err)
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		ecr + "/app", ecr + "/team/app:v1@" + newD, ecr + "/app@" + newD, "nginx", "localhost:5000/x",
		"[::1]:5000/app:latest", "public.ecr.aws/a/b", ecr + "/app@sha512:" + strings.Repeat("a", 128), "",
		strings.TrimPrefix(newD, "sha256:"), "A/b", ecr + "/app/../x",
		ecrDS + "/app:latest", ecrDSF + "/team/app:v1@" + newD, ecrCN + "/app", ecrDS + ":443/app",
		"index.docker.io/nginx", "LocalHost/x", "a.b_c/d", "a__b/c--d:_t", "x/y@md5:" + strings.Repeat("f", 32),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := disagreement(s); d != "" {
			t.Fatal(d) // the grammar is distribution/reference's
		}
		r, err := Parse(s)
		if err != nil {
			if r != (Ref{}) {
				t.Fatalf("Parse(%q) returned %+v with error %v", s, r, err)
			}
			return
		}
		if r.Host == "" || r.Path == "" {
			t.Fatalf("Parse(%q) = %+v: empty host or path", s, r)
		}
		if r.Digest != "" && (len(r.Digest) != 71 || !strings.HasPrefix(r.Digest, "sha256:")) {
			t.Fatalf("Parse(%q) digest %q is not sha256:<64 hex>", s, r.Digest)
		}
		back, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, r.String(), err)
		}
		if back != r {
			t.Fatalf("round trip of %q: %+v then %+v", s, r, back)
		}
		// A reference always matches the target made of itself.
		tag, ok := r.Tracks()
		if ok {
			v, err := Compare(Pushed{Host: r.Host, Path: r.Path, Tag: tag, Digest: r.Digest}, s)
			if err != nil || !v.Match || v.AlreadyPinned != (r.Digest != "") {
				t.Fatalf("Compare against itself: %+v, %v", v, err)
			}
		}
	})
}
