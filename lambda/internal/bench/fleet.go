// Package bench measures pinroll against the lower bound of API calls the problem allows, on
// fleets built directly inside pinroll's emulator, and holds the naive reference it is compared
// with. It is test and benchmark support: nothing in the function imports it.
package bench

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

// Shape is a benchmark fleet: Clusters × PerCluster services running Distinct task
// definitions, of which K — each its own family, each used by one service — run the pushed
// repository (Repository:latest) and so are updated by a push.
type Shape struct {
	Clusters, PerCluster, Distinct, K int
}

// The fleets of issue 7.
var (
	Small  = Shape{Clusters: 1, PerCluster: 10, Distinct: 8, K: 5}
	Medium = Shape{Clusters: 10, PerCluster: 100, Distinct: 750, K: 5}
	Large  = Shape{Clusters: 20, PerCluster: 100, Distinct: 1500, K: 5}
)

func (s Shape) String() string { return fmt.Sprintf("%d×%d", s.Clusters, s.PerCluster) }

// Services is the number of services in the fleet.
func (s Shape) Services() int { return s.Clusters * s.PerCluster }

// Repository is the pushed repository; the fleet's ECR holds it with FirstManifest as :latest.
const Repository = "app"

// FirstManifest is the image :latest points at when the fleet is loaded; NextManifest the one
// pushed for the warm invocation.
var (
	FirstManifest = manifest("first")
	NextManifest  = manifest("next")
)

func manifest(seed string) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%x","size":1469},"layers":[]}`, sha256.Sum256([]byte(seed)))
}

// Updated reports whether the service with global index g (cluster-major) runs the pushed
// repository: K of them, spread evenly across the fleet.
func (s Shape) Updated(g int) (int, bool) {
	n := s.Services()
	for i := range s.K {
		if g == i*n/s.K {
			return i, true
		}
	}
	return 0, false
}

// Rereads is Σ⌈K_c/10⌉: the DescribeServices calls that re-read the K updated services, ten
// of a cluster a call, right before they are updated.
func (s Shape) Rereads() int {
	perCluster := map[int]int{}
	for g := range s.Services() {
		if _, ok := s.Updated(g); ok {
			perCluster[g/s.PerCluster]++
		}
	}
	n := 0
	for _, k := range perCluster {
		n += ceil(k, 10)
	}
	return n
}

// Build returns the fleet as the fleet package describes it, ready for emulator.Load.
func (s Shape) Build() (*fleet.Fleet, error) {
	if s.Distinct < s.K || s.Services()-s.K < s.Distinct-s.K {
		return nil, fmt.Errorf("fleet %v: %d distinct task definitions do not fit %d services, %d updated", s, s.Distinct, s.Services(), s.K)
	}
	f := &fleet.Fleet{Repositories: []fleet.Repository{{Name: Repository, Images: []fleet.Image{{Tags: []string{"latest"}, Manifest: FirstManifest}}}}}
	for i := range s.K {
		f.TaskDefinitions = append(f.TaskDefinitions, taskDefinition(fmt.Sprintf("%s-%d", Repository, i), "{{registry}}/"+Repository+":latest"))
	}
	others := s.Distinct - s.K
	for i := range others {
		f.TaskDefinitions = append(f.TaskDefinitions, taskDefinition(fmt.Sprintf("td-%04d", i), fmt.Sprintf("{{registry}}/lib-%04d:latest", i)))
	}
	other := 0
	for c := range s.Clusters {
		cluster := fmt.Sprintf("c%02d", c)
		f.Clusters = append(f.Clusters, fleet.Cluster{Name: cluster})
		for j := range s.PerCluster {
			td := ""
			if i, ok := s.Updated(c*s.PerCluster + j); ok {
				td = fmt.Sprintf("%s-%d:1", Repository, i)
			} else {
				td = fmt.Sprintf("td-%04d:1", other%others)
				other++
			}
			f.Services = append(f.Services, fleet.Service{Cluster: cluster, Name: fmt.Sprintf("svc-%03d", j), TaskDefinition: td, DesiredCount: 1, LaunchType: "FARGATE"})
		}
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return fleet.Parse(raw) // validated, {{registry}} expanded, revisions numbered
}

// taskDefinition is a modest, realistic task definition: one container with a few variables,
// a port and logs (its DescribeTaskDefinition answer is about 1 KiB).
func taskDefinition(family, image string) fleet.TaskDefinition {
	raw, _ := json.Marshal(map[string]any{
		"family": family, "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"},
		"cpu": "256", "memory": "512",
		"executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
		"containerDefinitions": []map[string]any{{
			"name": "main", "image": image, "essential": true,
			"portMappings": []map[string]any{{"containerPort": 8080, "protocol": "tcp"}},
			"environment": []map[string]string{
				{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"},
				{"name": "SERVICE", "value": family}, {"name": "REGION", "value": "us-east-1"},
			},
			"logConfiguration": map[string]any{"logDriver": "awslogs", "options": map[string]string{
				"awslogs-group": "/ecs/" + family, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs",
			}},
		}},
		"tags": []map[string]string{{"key": "team", "value": "platform"}},
	})
	return fleet.TaskDefinition{JSON: raw}
}
