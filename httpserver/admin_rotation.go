package httpserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// rotationJob is the data key rotation this process runs in the background:
// re-encrypting every stored secret takes longer than a request should.
type rotationJob struct {
	mu       sync.Mutex
	running  bool
	started  time.Time
	finished time.Time
	progress pierredb.RotationProgress
	retired  []uint32
	err      string
}

// Bounds of a rotation request: pierredb's largest batch, and a minute between
// batches.
const (
	maxRotationBatch       = 2000
	maxRotationPauseMillis = 60_000
)

type rotationRequest struct {
	// Rotate makes a new data key primary first (default true); false only
	// moves what is left under older versions to the current primary.
	Rotate *bool `json:"rotate"`
	// Retire retires the old versions once nothing remains under them.
	Retire      bool `json:"retire"`
	BatchSize   int  `json:"batch_size"`
	PauseMillis int  `json:"pause_ms"`
}

// startRotation rotates the data key and re-encrypts every sealed value in the
// background (202); GET reports how far it got. One rotation runs per process
// at a time; several instances may run one at once safely (each row is
// rewritten with a compare-and-swap).
func (a *admin) startRotation(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	var req rotationRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	// Refuse what Reencrypt would refuse before the key is rotated and the 202
	// sent: a refusal in the background would leave a new primary key and
	// nothing moved to it.
	if req.BatchSize < 0 || req.BatchSize > maxRotationBatch {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("batch_size must be between 1 and %d; leave it out for the default", maxRotationBatch))
		return
	}
	if req.PauseMillis < 0 || req.PauseMillis > maxRotationPauseMillis {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("pause_ms must be between 0 and %d", maxRotationPauseMillis))
		return
	}
	job := &a.rotation
	job.mu.Lock()
	if job.running {
		job.mu.Unlock()
		writeError(w, http.StatusConflict, CodeConflict, "a data key rotation is already running; GET this route for its progress")
		return
	}
	job.running, job.started, job.finished, job.err, job.retired = true, time.Now(), time.Time{}, "", nil
	job.progress = pierredb.RotationProgress{}
	job.mu.Unlock()

	var newVersion uint32
	if req.Rotate == nil || *req.Rotate {
		v, err := a.db.Keyring().Rotate(r.Context(), keyring.PurposeEncryption)
		if err != nil {
			job.mu.Lock()
			job.running, job.err = false, rotationFailed
			job.mu.Unlock()
			writeStoreError(w, a.opts.Logger, r, err)
			return
		}
		newVersion = v
	}
	// The rotation outlives the request; it stops when the process does.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		progress, err := a.db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{
			BatchSize: req.BatchSize, Pause: time.Duration(req.PauseMillis) * time.Millisecond,
			Progress: func(p pierredb.RotationProgress) {
				job.mu.Lock()
				job.progress = p
				job.mu.Unlock()
			},
		})
		var retired []uint32
		if err == nil && req.Retire && progress.Remaining() == 0 {
			// The versions to retire are the keyring's older ones still
			// unretired: progress.Versions counts only versions that seal a
			// value, and once the rotation is done that is the primary alone.
			for _, k := range a.db.Keyring().Keys() {
				if k.Purpose != keyring.PurposeEncryption || k.State != keyring.StateActive || k.Version == progress.Primary {
					continue
				}
				if rerr := a.db.Rotation().Retire(ctx, keyring.PurposeEncryption, k.Version); rerr != nil {
					a.opts.Logger.Warn("httpserver: could not retire a data key version", "version", k.Version, "err", rerr.Error())
					continue
				}
				retired = append(retired, k.Version)
			}
		}
		job.mu.Lock()
		defer job.mu.Unlock()
		job.running, job.finished, job.progress, job.retired = false, time.Now(), progress, retired
		if err != nil {
			job.err = rotationFailed
			a.opts.Logger.Error("httpserver: data key rotation failed", "err", err.Error())
		}
	}()
	ok(w, http.StatusAccepted, "Data key rotation started", map[string]any{"new_version": newVersion, "status_url": r.URL.Path})
}

// rotationFailed is what the progress route says of a failed rotation: the
// error itself (a driver's or the keyring's words) goes to the log only, as
// every other unexpected error does.
const rotationFailed = "the data key rotation failed; the server's log has the details; start it again to resume"

// rotationProgress counts sealed values by key version now, and reports the
// background rotation of this process, if any.
func (a *admin) rotationProgress(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	now, err := a.db.Rotation().Progress(r.Context())
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	job := &a.rotation
	job.mu.Lock()
	defer job.mu.Unlock()
	versions := map[string]int64{}
	for v, n := range now.Versions {
		versions[strconv.FormatUint(uint64(v), 10)] = n
	}
	run := map[string]any{"running": job.running, "started_at": timeJSON(job.started), "finished_at": timeJSON(job.finished),
		"rewritten": job.progress.Rewritten, "unreadable": job.progress.Unreadable, "retired_versions": job.retired, "error": optional(job.err)}
	ok(w, http.StatusOK, "Data key rotation progress", map[string]any{
		"primary_version": now.Primary, "versions": versions, "remaining": now.Remaining(), "this_instance": run})
}
