-- schema_version: 10
-- The vjepa-lab warehouse schema. The number above must equal vjepa_core.store.schema.SCHEMA_VERSION
-- (a test checks it). This file always describes the CURRENT version: it is applied, in one
-- transaction, to an empty DuckDB file on first write, and the code then records the version in
-- `meta`. To change it: edit this file, bump SCHEMA_VERSION and add MIGRATIONS[old_version] in
-- vjepa_core/store/schema.py, the step that brings a file of the old version to the new one.
--
-- Conventions: TIMESTAMP columns hold naive UTC; JSON columns hold JSON text; a run's rows in
-- every table share its run_id and are replaced together. No FOREIGN KEYs: DuckDB checks them
-- eagerly, which would force a delete order on every rewrite of a run for no gain, since the
-- writer always replaces all tables of a run in one transaction.

CREATE TABLE meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per run, failed ones too (status 'failed' + error).
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,            -- hash of the canonical run spec (vjepa_core.spec)
    matrix_id VARCHAR,
    strategy VARCHAR,
    model VARCHAR,
    dataset VARCHAR,
    dataset_path VARCHAR,
    num_classes INTEGER,
    videos_per_class INTEGER,
    frames_per_clip INTEGER,
    frame_stride INTEGER,
    epochs INTEGER,
    lr DOUBLE,
    weight_decay DOUBLE,
    batch_size INTEGER,
    accumulation_steps INTEGER,
    lora_rank INTEGER,
    lora_alpha DOUBLE,
    lora_dropout DOUBLE,
    seed BIGINT,
    precision VARCHAR,                     -- fp32 / bf16 / fp16 actually used
    trainable_params BIGINT,
    total_params BIGINT,
    status VARCHAR NOT NULL,               -- 'success' | 'failed'
    error VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    train_seconds DOUBLE,                  -- wall time of the whole run
    decode_seconds DOUBLE,
    encode_seconds DOUBLE,
    fit_seconds DOUBLE,
    eval_seconds DOUBLE,
    peak_memory_bytes BIGINT,
    device VARCHAR,
    git_sha VARCHAR,
    versions JSON,                         -- {"torch": ..., "transformers": ..., ...}
    spec JSON,                             -- the full run spec
    checkpoint_path VARCHAR,
    test_acc DOUBLE,
    test_macro_f1 DOUBLE,
    test_loss DOUBLE,
    best_val_acc DOUBLE,
    best_epoch INTEGER,
    train_acc DOUBLE,
    inference_ms DOUBLE,
    num_train INTEGER,
    num_val INTEGER,
    num_test INTEGER,
    videos_skipped INTEGER,
    skipped_videos JSON,                   -- list of the paths that could not be decoded
    -- frozen-encoder strategies only (vjepa_core.cache); NULL for runs that decode every step
    cache_hits BIGINT,                     -- cached (video, view) outputs this run read
    cache_misses BIGINT,                   -- ... it did not find, and computed
    encoded_clips BIGINT,                  -- clips this run ran the encoder on (0 on a warm cache)
    cache_bytes BIGINT,                    -- bytes on disk of the cache groups the run used
    error_kind VARCHAR,                    -- failed runs: 'storage' (the disk refused a write; retried on the
                                           -- next invocation) | 'error' (anything else)
    release_bytes BIGINT                   -- the weights `runner release` writes in fp32 (LoRA merged): what
                                           -- the verdict's deployment pick compares
);

CREATE TABLE epochs (
    run_id VARCHAR NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss DOUBLE,
    train_acc DOUBLE,
    val_loss DOUBLE,
    val_acc DOUBLE,
    seconds DOUBLE,
    lr DOUBLE,
    PRIMARY KEY (run_id, epoch)
);

CREATE TABLE class_metrics (
    run_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,                -- 'train' | 'val' | 'test'
    class_name VARCHAR NOT NULL,
    precision DOUBLE,
    recall DOUBLE,
    f1 DOUBLE,
    support INTEGER,
    PRIMARY KEY (run_id, split, class_name)
);

CREATE TABLE confusion (
    run_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    true_class VARCHAR NOT NULL,
    pred_class VARCHAR NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, split, true_class, pred_class)
);

-- No primary key: a manifest may list the same video twice, and that is the data, not an error.
CREATE TABLE predictions (
    run_id VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    video VARCHAR NOT NULL,
    true_class VARCHAR,
    pred_class VARCHAR,
    confidence DOUBLE,
    correct BOOLEAN,
    probs JSON                             -- optional {class: probability}
);

-- One row per matrix, updated while it runs: the dashboard's live progress.
CREATE TABLE matrices (
    matrix_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    spec JSON,
    total_runs INTEGER,
    status VARCHAR,                        -- 'running' | 'finished' | 'interrupted'
    started_at TIMESTAMP,
    updated_at TIMESTAMP,
    finished_at TIMESTAMP,
    pid INTEGER,
    current_run_id VARCHAR,
    host VARCHAR,                          -- where `pid` runs: a dead pid there means a killed matrix
    pid_started DOUBLE                     -- when `pid` started (epoch s): a reused pid is another process
);

-- Which process trains which run right now (vjepa_core.store.claims): a run is claimed before it
-- trains and released in the transaction that writes its rows, so that several runner processes on
-- one warehouse train each run once. A claim whose process is gone is taken over.
CREATE TABLE claims (
    run_id VARCHAR PRIMARY KEY,
    owner VARCHAR NOT NULL,                -- random id of the claiming runner process
    host VARCHAR NOT NULL,
    pid INTEGER NOT NULL,
    pid_started DOUBLE,                    -- that process's start (epoch seconds): a reused pid is not it
    command VARCHAR,                       -- 'run', 'run-matrix', 'sweep'
    matrix_id VARCHAR,
    strategy VARCHAR,
    claimed_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL        -- refreshed while the run trains: how other machines tell it is alive
);

-- One vector per video, or per window of one (`runner embed`), by what made it: rewritten in place
-- when the same model embeds the same clip again.
CREATE TABLE embeddings (
    model_fingerprint VARCHAR NOT NULL,    -- encoder (+ pooler) weights, source and preprocessing
    video VARCHAR NOT NULL,                -- the video file's path
    start_frame INTEGER NOT NULL,          -- the span embedded: [start_frame, end_frame); a whole video is
    end_frame INTEGER NOT NULL,            -- 0 .. its frame count (its centre clip, as evaluation reads it)
    start_s DOUBLE,                        -- windows only: the span in seconds
    end_s DOUBLE,
    label VARCHAR,
    split VARCHAR,                         -- the dataset's own split, when it has one
    dataset VARCHAR,
    model VARCHAR,                         -- the base model (preset:tiny, a hub id, a folder)
    source VARCHAR,                        -- 'encoder' (mean-pooled tokens) | 'pooler' (a model's pooler)
    checkpoint VARCHAR,                    -- the checkpoint's run id when a checkpoint made the vector
    frames_per_clip INTEGER,
    frame_stride INTEGER,
    window_s DOUBLE,                       -- windows only: window length and stride asked for
    stride_s DOUBLE,
    dim INTEGER,
    embedding FLOAT[] NOT NULL,
    created_at TIMESTAMP,
    PRIMARY KEY (model_fingerprint, video, start_frame, end_frame)
);

-- The files `runner embed` could not embed (not a video, no video stream, shorter than the window), by
-- the set of vectors that lacks them: (model_fingerprint, window_s, stride_s). Rewritten with the set:
-- a file that embeds later leaves this table.
CREATE TABLE embedding_skips (
    model_fingerprint VARCHAR NOT NULL,
    video VARCHAR NOT NULL,                -- the file's path
    window_s DOUBLE,                       -- windows only: the set's window length and stride
    stride_s DOUBLE,
    reason VARCHAR NOT NULL,               -- why, as the warning line said it
    dataset VARCHAR,
    created_at TIMESTAMP
);

-- One row per `runner pretrain` run (vjepa_core.pretrain): self-supervised masked latent prediction
-- that turns unlabelled videos into a base model (a save_pretrained folder at output_path).
CREATE TABLE pretrain_runs (
    pretrain_id VARCHAR PRIMARY KEY,       -- hash of the pretraining spec and the videos' fingerprint
    model VARCHAR,                         -- the model pretraining started from (preset:..., a path, a hub id)
    dataset VARCHAR,
    data_fingerprint VARCHAR,              -- hash of the videos' names, sizes and modification times
    num_videos INTEGER,
    videos_skipped INTEGER,
    skipped_videos JSON,                   -- [{path, reason}]: undecodable or shorter than frames_per_clip
    probe_data VARCHAR,                    -- the labelled set the frozen probe ran on, if any
    epochs INTEGER,
    batch_size INTEGER,
    lr DOUBLE,
    masks VARCHAR,                         -- e.g. '8x0.15,2x0.7': blocks x spatial scale per mask
    masked_ratio DOUBLE,                   -- mean share of tokens the masks hide
    status VARCHAR NOT NULL,               -- 'success' | 'failed'
    error VARCHAR,
    chosen_epoch INTEGER,                  -- the epoch whose weights are kept
    chosen_by VARCHAR,                     -- 'probe_acc' (best frozen probe) | 'last'
    final_loss DOUBLE,
    probe_acc DOUBLE,                      -- diagnostics of the kept epoch ...
    effective_rank DOUBLE,
    embedding_std DOUBLE,
    initial_probe_acc DOUBLE,              -- ... and of the starting model, to compare with
    initial_effective_rank DOUBLE,
    initial_embedding_std DOUBLE,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    train_seconds DOUBLE,
    peak_memory_bytes BIGINT,
    device VARCHAR,
    precision VARCHAR,
    git_sha VARCHAR,
    versions JSON,
    spec JSON,                             -- the full pretraining spec
    output_path VARCHAR
);

-- Collapse diagnostics per pretraining epoch; epoch 0 is the starting model, before any step.
CREATE TABLE pretrain_epochs (
    pretrain_id VARCHAR NOT NULL,
    epoch INTEGER NOT NULL,
    loss DOUBLE,                           -- mean L1 of the epoch's steps (NULL for epoch 0)
    seconds DOUBLE,
    lr DOUBLE,
    momentum DOUBLE,                       -- EMA momentum of the target encoder at the epoch's end
    embedding_std DOUBLE,                  -- per-dimension std of the layer-normed target embeddings
    effective_rank DOUBLE,                 -- of the mean-pooled embeddings of the fixed clips
    probe_acc DOUBLE,                      -- frozen attentive probe, the probe set's train -> val split
    PRIMARY KEY (pretrain_id, epoch)
);
