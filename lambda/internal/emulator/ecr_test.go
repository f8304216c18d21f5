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

func manifest(n int) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":10},"layers":[]}`, n)
}

func tagsOf(t *testing.T, c *ecr.Client, repo string) map[string]string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, d := range out.ImageDetails {
		m[aws.ToString(d.ImageDigest)] = strings.Join(d.ImageTags, ",")
	}
	return m
}

func TestPutImageComputesDigestsAndMovesTags(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	repo, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(repo.Repository.RepositoryUri); got != registry+"/team/app" {
		t.Errorf("uri = %s", got)
	}
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	wantCode(t, err, "RepositoryAlreadyExistsException")

	one, two := manifest(1), manifest(2)
	put, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(one), ImageTag: aws.String("latest")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(put.Image.ImageId.ImageDigest); got != fleet.ManifestDigest(one) {
		t.Errorf("digest = %s, want sha256 of the manifest %s", got, fleet.ManifestDigest(one))
	}
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(one), ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(two), ImageDigest: aws.String(fleet.ManifestDigest(one))})
	wantCode(t, err, "ImageDigestDoesNotMatchException")
	_, err = c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(one), ImageTag: aws.String("latest")})
	wantCode(t, err, "ImageAlreadyExistsException")

	// latest moves to the new image; the old one keeps v1.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(two), ImageTag: aws.String("latest"), ImageDigest: aws.String(fleet.ManifestDigest(two))}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{fleet.ManifestDigest(one): "v1", fleet.ManifestDigest(two): "latest"}
	if got := tagsOf(t, c, "team/app"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	// v1 moves too: the first image is untagged now.
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("team/app"), ImageManifest: aws.String(two), ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	untagged, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("team/app"), Filter: &types.ListImagesFilter{TagStatus: types.TagStatusUntagged}})
	if err != nil || len(untagged.ImageIds) != 1 || aws.ToString(untagged.ImageIds[0].ImageDigest) != fleet.ManifestDigest(one) {
		t.Errorf("untagged = %+v (%v)", untagged, err)
	}

	got, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("team/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}, {ImageTag: aws.String("nope")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != two ||
		len(got.Failures) != 1 || got.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Errorf("batch get = %+v (%v)", got, err)
	}
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("team/app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(fleet.ManifestDigest(one))}}})
	if err != nil || len(del.ImageIds) != 1 || len(tagsOf(t, c, "team/app")) != 1 {
		t.Errorf("delete = %+v (%v)", del, err)
	}
}

func TestDescribeImagesLimitsAndErrors(t *testing.T) {
	srv := start(t, emulator.Options{})
	c := ecrClient(srv.URL(), clientOptions{})
	ctx := context.Background()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageManifest: aws.String(manifest(i)), ImageTag: aws.String(fmt.Sprintf("v%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	p := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.ImageDetails))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("default pages %v, want [100 100 50]", sizes)
	}
	_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), MaxResults: aws.Int32(1001)})
	wantCode(t, err, "InvalidParameterException")
	all, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), MaxResults: aws.Int32(1000)})
	if err != nil || len(all.ImageDetails) != 250 || all.NextToken != nil {
		t.Errorf("maxResults 1000: %d images (%v)", len(all.ImageDetails), err)
	}
	ids := make([]types.ImageIdentifier, 101)
	for i := range ids {
		ids[i] = types.ImageIdentifier{ImageTag: aws.String(fmt.Sprintf("v%d", i))}
	}
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: ids})
	wantCode(t, err, "InvalidParameterException")
	byID, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: ids[:100]})
	if err != nil || len(byID.ImageDetails) != 100 {
		t.Errorf("100 ids: %v", err)
	}
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("missing")}}})
	wantCode(t, err, "ImageNotFoundException")
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), RegistryId: aws.String("999999999999"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	wantCode(t, err, "RepositoryNotFoundException")
	ok, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("app"), RegistryId: aws.String(account),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1"), ImageDigest: aws.String(fleet.ManifestDigest(manifest(1)))}}})
	if err != nil || len(ok.ImageDetails) != 1 || ok.ImageDetails[0].ImagePushedAt == nil || aws.ToString(ok.ImageDetails[0].ImageManifestMediaType) != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("by tag and digest: %+v (%v)", ok, err)
	}
}
