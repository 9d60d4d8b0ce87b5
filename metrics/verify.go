package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Verify is the verify jobs' metrics (package jobs records them): checks of an account's
// repo with its own PDS, for record deletes the commit could not settle and for #sync
// events. Pairs they remove are counted in colindex_firehose_index_removals_total with cause
// pds_check (verify_collection) or sync (verify_repo).
type Verify struct {
	VerifyJobs         *prometheus.CounterVec
	VerifyOutcomes     *prometheus.CounterVec
	VerifyAdds         prometheus.Counter
	VerifyPDSResponses *prometheus.CounterVec
}

func newVerify(factory promauto.Factory) Verify {
	return Verify{
		VerifyJobs: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_verify_jobs_total",
			Help: "Verify job attempts by kind (verify_collection, verify_repo) and result: done, or failed (retried with backoff until the job's attempts run out; a failure never removes anything).",
		}, []string{"kind", "result"}),
		VerifyOutcomes: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_verify_outcomes_total",
			Help: "What finished verify jobs decided, by kind and outcome: removed (no record left), kept, reconciled (verify_repo), account_deleted (RepoNotFound), account_inactive (RepoDeactivated, RepoTakendown, RepoSuspended), skipped (account already deleted in the index), changed (the stream wrote a pair or the status the check would write after the PDS was asked: asked again a second later, not a failure).",
		}, []string{"kind", "outcome"}),
		VerifyAdds: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_verify_index_adds_total",
			Help: "(collection, DID) pairs a verify_repo job added because the account's PDS lists the collection and the index did not hold it.",
		}),
		VerifyPDSResponses: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_verify_pds_responses_total",
			Help: "Responses from PDSes to verify jobs by HTTP status code; code=\"error\" when no response came.",
		}, []string{"code"}),
	}
}
