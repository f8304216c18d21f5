package emulator_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
)

// What acting in an assumed account costs per request (session lookup), against the default
// credentials; the AssumeRole itself happens once, then the SDK caches the credentials.
func BenchmarkListClusters(b *testing.B) {
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for name, c := range map[string]*ecs.Client{
		"default": ecsClient(srv.URL(), clientOptions{}),
		"assumed": ecs.NewFromConfig(assumed(srv.URL(), roleARN(devAccount), clientOptions{})),
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
