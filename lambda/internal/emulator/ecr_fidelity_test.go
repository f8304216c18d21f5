package emulator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// CreateRepository answers the scanning and encryption it was asked for, and refuses a
// registryId that is not the caller's.
func TestCreateRepositoryKeepsScanningAndEncryption(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	out, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("scanned"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repository
	if !r.ImageScanningConfiguration.ScanOnPush || r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms ||
		!strings.HasPrefix(aws.ToString(r.EncryptionConfiguration.KmsKey), "arn:aws:kms:us-east-1:123456789012:key/") {
		t.Errorf("CreateRepository answered scanOnPush %v encryption %+v", r.ImageScanningConfiguration.ScanOnPush, r.EncryptionConfiguration)
	}
	key := "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("own-key"),
		EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String(key)}}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"scanned", "own-key"}})
	if err != nil {
		t.Fatal(err)
	}
	if !desc.Repositories[0].ImageScanningConfiguration.ScanOnPush || aws.ToString(desc.Repositories[1].EncryptionConfiguration.KmsKey) != key {
		t.Errorf("DescribeRepositories: %+v / %+v", desc.Repositories[0].ImageScanningConfiguration, desc.Repositories[1].EncryptionConfiguration)
	}
	plain, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("plain")})
	if err != nil || plain.Repository.ImageScanningConfiguration.ScanOnPush || plain.Repository.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Errorf("defaults: %+v (%v)", plain, err)
	}
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("elsewhere"), RegistryId: aws.String("999999999999")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("aes-with-key"),
		EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256, KmsKey: aws.String(key)}})
	wantCode(t, err, "InvalidParameterException")
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("mine"), RegistryId: aws.String(account)}); err != nil {
		t.Errorf("own registry id: %v", err)
	}
}

// Tag mutability with exclusions, as the API documents it: IMMUTABLE_WITH_EXCLUSION makes the
// tags matching a filter mutable, MUTABLE_WITH_EXCLUSION makes them immutable.
func TestTagMutabilityWithExclusions(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	latest := []types.ImageTagMutabilityExclusionFilter{{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String("latest*")}}
	out, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("imm"),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion, ImageTagMutabilityExclusionFilters: latest})
	if err != nil {
		t.Fatal(err)
	}
	if out.Repository.ImageTagMutability != types.ImageTagMutabilityImmutableWithExclusion || len(out.Repository.ImageTagMutabilityExclusionFilters) != 1 {
		t.Errorf("CreateRepository answered %s %+v", out.Repository.ImageTagMutability, out.Repository.ImageTagMutabilityExclusionFilters)
	}
	put := func(repo, tag string, n int) error {
		_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(manifest(n)), ImageTag: aws.String(tag)})
		return err
	}
	for _, tag := range []string{"latest", "latest-arm", "v1"} {
		if err := put("imm", tag, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := put("imm", "latest", 2); err != nil {
		t.Errorf("moving an excluded tag of IMMUTABLE_WITH_EXCLUSION: %v", err)
	}
	if err := put("imm", "latest-arm", 2); err != nil {
		t.Errorf("moving an excluded tag of IMMUTABLE_WITH_EXCLUSION: %v", err)
	}
	wantCode(t, put("imm", "v1", 2), "ImageTagAlreadyExistsException")

	if _, err := c.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("imm"),
		ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion, ImageTagMutabilityExclusionFilters: latest}); err != nil {
		t.Fatal(err)
	}
	if err := put("imm", "v1", 2); err != nil {
		t.Errorf("moving a tag MUTABLE_WITH_EXCLUSION does not exclude: %v", err)
	}
	wantCode(t, put("imm", "latest", 3), "ImageTagAlreadyExistsException")

	for name, in := range map[string]*ecr.CreateRepositoryInput{
		"exclusion without filters": {ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion},
		"filters without exclusion": {ImageTagMutability: types.ImageTagMutabilityImmutable, ImageTagMutabilityExclusionFilters: latest},
		"bad filter": {ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion,
			ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String("a/b")}}},
		"unknown mutability": {ImageTagMutability: "SOMETIMES"},
	} {
		in.RepositoryName = aws.String("bad")
		_, err := c.CreateRepository(ctx, in)
		if errorCode(err) != "InvalidParameterException" {
			t.Errorf("%s: %v, want InvalidParameterException", name, err)
		}
	}
}

// PutImage: a manifest without mediaType needs imageManifestMediaType; a wrong imageDigest is
// ImageDigestDoesNotMatchException.
func TestPutImageMediaTypeAndDigestErrors(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	bare := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("0", 64) + `","size":10},"layers":[]}`
	_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(bare), ImageTag: aws.String("bare")})
	wantCode(t, err, "InvalidParameterException")
	ok, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(bare), ImageTag: aws.String("bare"),
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")})
	if err != nil || aws.ToString(ok.Image.ImageManifestMediaType) != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("with imageManifestMediaType: %+v (%v)", ok, err)
	}
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(manifest(1)), ImageTag: aws.String("x"),
		ImageManifestMediaType: aws.String("application/vnd.docker.distribution.manifest.v2+json")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(manifest(1)),
		ImageDigest: aws.String(fleet.ManifestDigest(manifest(2)))})
	wantCode(t, err, "ImageDigestDoesNotMatchException")
}

// BatchGetImage and BatchDeleteImage answer problems with one image id as per-image failures
// with ECR's codes, never by failing the call.
func TestBatchImageFailuresPerImage(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	for i, tag := range []string{"one", "two"} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(manifest(i + 1)), ImageTag: aws.String(tag)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := []types.ImageIdentifier{
		{},
		{ImageDigest: aws.String("sha256:not-hex")},
		{ImageTag: aws.String("-bad")},
		{ImageDigest: aws.String(fleet.ManifestDigest(manifest(1))), ImageTag: aws.String("two")},
		{ImageDigest: aws.String("sha256:" + strings.Repeat("a", 64))},
		{ImageTag: aws.String("one")},
	}
	want := "[MissingDigestAndTag InvalidImageDigest InvalidImageTag ImageTagDoesNotMatchDigest ImageNotFound]"
	codes := func(fs []types.ImageFailure) string {
		var out []string
		for _, f := range fs {
			out = append(out, string(f.FailureCode))
		}
		return fmt.Sprint(out)
	}
	got, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("app"), ImageIds: ids})
	if err != nil {
		t.Fatalf("BatchGetImage failed the call: %v", err)
	}
	if len(got.Images) != 1 || codes(got.Failures) != want {
		t.Errorf("BatchGetImage: %d images, failures %s, want 1 and %s", len(got.Images), codes(got.Failures), want)
	}
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: ids})
	if err != nil {
		t.Fatalf("BatchDeleteImage failed the call: %v", err)
	}
	if len(del.ImageIds) != 1 || codes(del.Failures) != want {
		t.Errorf("BatchDeleteImage: %d deleted, failures %s, want 1 and %s", len(del.ImageIds), codes(del.Failures), want)
	}
}

// A manifest list's imageSizeInBytes is the largest of its manifests' sizes; a manifest a list
// refers to cannot be deleted from under it.
func TestManifestListSizeAndReferences(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("multi")}); err != nil {
		t.Fatal(err)
	}
	child := func(n, size int) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":%d},"layers":[]}`, n, size)
	}
	small, large := child(1, 100), child(2, 900)
	for _, m := range []string{small, large} {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("multi"), ImageManifest: aws.String(m)}); err != nil {
			t.Fatal(err)
		}
	}
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"platform":{"architecture":"amd64","os":"linux"}},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}`,
		fleet.ManifestDigest(small), len(small), fleet.ManifestDigest(large), len(large))
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("multi"), ImageManifest: aws.String(index), ImageTag: aws.String("latest")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("multi"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt64(out.ImageDetails[0].ImageSizeInBytes); got != 900 {
		t.Errorf("manifest list imageSizeInBytes = %d, want 900 (its largest manifest)", got)
	}
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("multi"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(fleet.ManifestDigest(small))}}})
	if err != nil || len(del.Failures) != 1 || del.Failures[0].FailureCode != types.ImageFailureCodeImageReferencedByManifestList {
		t.Errorf("deleting a referenced manifest: %+v (%v)", del, err)
	}
}

// DeleteRepository refuses a repository with images unless forced; the repository and
// registry policies are kept, returned and deleted with ECR's not-found codes.
func TestDeleteRepositoryAndPolicies(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(manifest(1)), ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr:BatchGetImage"]}]}`
	_, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("app")})
	wantCode(t, err, "RepositoryPolicyNotFoundException")
	_, err = c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("app"), PolicyText: aws.String("not json")})
	wantCode(t, err, "InvalidParameterException")
	if _, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("app"), PolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("app")})
	if err != nil || aws.ToString(got.PolicyText) != policy || aws.ToString(got.RegistryId) != account {
		t.Errorf("GetRepositoryPolicy = %+v (%v)", got, err)
	}
	if del, err := c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("app")}); err != nil || aws.ToString(del.PolicyText) != policy {
		t.Errorf("DeleteRepositoryPolicy = %+v (%v)", del, err)
	}
	_, err = c.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("app")})
	wantCode(t, err, "RepositoryPolicyNotFoundException")

	_, err = c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	wantCode(t, err, "RegistryPolicyNotFoundException")
	if _, err := c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	reg, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	if err != nil || aws.ToString(reg.PolicyText) != policy || aws.ToString(reg.RegistryId) != account {
		t.Errorf("GetRegistryPolicy = %+v (%v)", reg, err)
	}
	if _, err := c.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRegistryPolicy(ctx, &ecr.DeleteRegistryPolicyInput{})
	wantCode(t, err, "RegistryPolicyNotFoundException")

	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("app")})
	wantCode(t, err, "RepositoryNotEmptyException")
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("app"), Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"app"}})
	wantCode(t, err, "RepositoryNotFoundException")
	_, err = c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("app")})
	wantCode(t, err, "RepositoryNotFoundException")
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Errorf("the name is free again: %v", err)
	}
}
