-- An index as evr wrote it at schema 5 (commit d8e2779): two videos, one decoded (on-screen
-- text, people, a speech segment, two shots) and one imported, 8-dim vectors. Made with that
-- commit's storage.Store and planted results; tests/test_store.py upgrades it.
CREATE TABLE meta (
	"key" VARCHAR NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE videos (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	path VARCHAR NOT NULL, 
	stem VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	mtime_ns INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	error TEXT, 
	decoder VARCHAR, 
	duration FLOAT, 
	fps FLOAT, 
	frame_count INTEGER, 
	width INTEGER, 
	height INTEGER, 
	thumb_dir VARCHAR, 
	analyzers VARCHAR, 
	indexed_at FLOAT, 
	origin VARCHAR DEFAULT 'decoded' NOT NULL, 
	media_path VARCHAR, 
	media_info TEXT
);
CREATE TABLE vector_removals (
	seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	keyframe_id INTEGER NOT NULL
);
CREATE TABLE keyframes (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	video_id INTEGER NOT NULL, 
	frame_idx INTEGER NOT NULL, 
	timestamp FLOAT NOT NULL, 
	shot INTEGER NOT NULL, 
	thumbnail VARCHAR NOT NULL, 
	source_image VARCHAR, 
	ocr_text TEXT, 
	person_count INTEGER, 
	person_area FLOAT, 
	person_mask BLOB, 
	FOREIGN KEY(video_id) REFERENCES videos (id) ON DELETE CASCADE
);
CREATE TABLE shots (
	video_id INTEGER NOT NULL, 
	shot INTEGER NOT NULL, 
	start_frame INTEGER NOT NULL, 
	start FLOAT NOT NULL, 
	"end" FLOAT NOT NULL, 
	PRIMARY KEY (video_id, shot), 
	FOREIGN KEY(video_id) REFERENCES videos (id) ON DELETE CASCADE
);
CREATE TABLE speech_segments (
	id INTEGER NOT NULL, 
	video_id INTEGER NOT NULL, 
	start FLOAT NOT NULL, 
	"end" FLOAT NOT NULL, 
	text TEXT NOT NULL, 
	language VARCHAR NOT NULL, 
	confidence FLOAT NOT NULL, 
	words TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(video_id) REFERENCES videos (id) ON DELETE CASCADE
);
CREATE TABLE embeddings (
	keyframe_id INTEGER NOT NULL, 
	vector BLOB NOT NULL, 
	PRIMARY KEY (keyframe_id), 
	FOREIGN KEY(keyframe_id) REFERENCES keyframes (id) ON DELETE CASCADE
);
CREATE TABLE ocr_boxes (
	text TEXT NOT NULL, 
	confidence FLOAT NOT NULL, 
	id INTEGER NOT NULL, 
	keyframe_id INTEGER NOT NULL, 
	x0 FLOAT NOT NULL, 
	y0 FLOAT NOT NULL, 
	x1 FLOAT NOT NULL, 
	y1 FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(keyframe_id) REFERENCES keyframes (id) ON DELETE CASCADE
);
CREATE TABLE persons (
	score FLOAT NOT NULL, 
	keypoints TEXT NOT NULL, 
	labels TEXT NOT NULL, 
	id INTEGER NOT NULL, 
	keyframe_id INTEGER NOT NULL, 
	x0 FLOAT NOT NULL, 
	y0 FLOAT NOT NULL, 
	x1 FLOAT NOT NULL, 
	y1 FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(keyframe_id) REFERENCES keyframes (id) ON DELETE CASCADE
);
CREATE TABLE keyframe_poses (
	label VARCHAR NOT NULL, 
	keyframe_id INTEGER NOT NULL, 
	PRIMARY KEY (label, keyframe_id), 
	FOREIGN KEY(keyframe_id) REFERENCES keyframes (id) ON DELETE CASCADE
)
 WITHOUT ROWID

;
CREATE VIRTUAL TABLE ocr_fts USING fts5(text, tokenize = 'unicode61');
CREATE VIRTUAL TABLE speech_fts USING fts5(text, tokenize = 'unicode61');
INSERT INTO meta VALUES ('schema_version', '5');
INSERT INTO meta VALUES ('clip_model', 'test');
INSERT INTO meta VALUES ('clip_pretrained', 'none');
INSERT INTO meta VALUES ('clip_dim', '8');
INSERT INTO meta VALUES ('generation', '2');
INSERT INTO videos VALUES (1, '/v/news.mp4', 'news', 100, 1, 'indexed', NULL, 'decord', 4.0, 25.0, 100, 320, 240, 'v1-18ebaf055cba0984', 'keyframes:0.5/2.0/0.05|shots:3.0/15.0/12.0/0.4/256|clip|ocr:tesseract+craft:vi+en|persons:mediapipe|speech:pocketsphinx:en-us', 1795721314.015442, 'decoded', '/v/news.mp4', NULL);
INSERT INTO videos VALUES (2, '/pkg/map-keyframes/L01_V001.csv', 'L01_V001', 10, 2, 'indexed', NULL, 'aic', 10.0, 25.0, 250, 1280, 720, 'v2-18ebaf055e341015', 'aic:ViT-B-32/openai|ocr:en', 1795721314.0301874, 'aic', '/pkg/L01_V001.mp4', '{"title": "a title"}');
INSERT INTO keyframes VALUES (1, 1, 0, 0.0, 0, 'v1-18ebaf055cba0984/0.jpg', NULL, '', 0, 0.0, NULL);
INSERT INTO keyframes VALUES (2, 1, 25, 1.0, 0, 'v1-18ebaf055cba0984/25.jpg', NULL, 'LŨ LỤT Ở HUẾ', 0, 0.0, NULL);
INSERT INTO keyframes VALUES (3, 1, 50, 2.0, 1, 'v1-18ebaf055cba0984/50.jpg', NULL, '', 2, 0.25, NULL);
INSERT INTO keyframes VALUES (4, 1, 75, 3.0, 1, 'v1-18ebaf055cba0984/75.jpg', NULL, '', 0, 0.0, NULL);
INSERT INTO keyframes VALUES (5, 2, 0, 0.0, 0, 'v2-18ebaf055e341015/0.jpg', '/pkg/kf/0.jpg', NULL, NULL, NULL, NULL);
INSERT INTO keyframes VALUES (6, 2, 25, 1.0, 0, 'v2-18ebaf055e341015/25.jpg', '/pkg/kf/1.jpg', NULL, NULL, NULL, NULL);
INSERT INTO keyframes VALUES (7, 2, 50, 2.0, 0, 'v2-18ebaf055e341015/50.jpg', '/pkg/kf/2.jpg', NULL, NULL, NULL, NULL);
INSERT INTO shots VALUES (1, 0, 0, 0.0, 2.0);
INSERT INTO shots VALUES (1, 1, 50, 2.0, 4.0);
INSERT INTO speech_segments VALUES (1, 1, 0.5, 1.5, 'hello world', 'en', 0.6, '[["hello", 0.5, 0.9], ["world", 1.0, 1.5]]');
INSERT INTO embeddings VALUES (1, X'522c8aac8035352b9ab436329a391138');
INSERT INTO embeddings VALUES (2, X'5e31613622310fb90737ee322bb48334');
INSERT INTO embeddings VALUES (3, X'142be4b0bbafb6b936385b3517ae3e33');
INSERT INTO embeddings VALUES (4, X'23382eb9c72e9ab057affeaa18b885ab');
INSERT INTO embeddings VALUES (5, X'71b8d6b54bb64c3001b0132cc936e836');
INSERT INTO embeddings VALUES (6, X'38243e39b938dfb398b011b46534eba6');
INSERT INTO embeddings VALUES (7, X'd498c835193400347938aab6eeb24db7');
INSERT INTO ocr_boxes VALUES ('LŨ LỤT Ở HUẾ', 0.9, 1, 2, 0.1, 0.8, 0.9, 0.9);
INSERT INTO persons VALUES (0.9, '[[0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0]]', '["standing"]', 1, 3, 0.1, 0.1, 0.3, 0.9);
INSERT INTO persons VALUES (0.8, '[[0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0], [0.6, 0.5, 1.0]]', '["sitting", "arms_raised"]', 2, 3, 0.5, 0.1, 0.7, 0.9);
INSERT INTO keyframe_poses VALUES ('arms_raised', 3);
INSERT INTO keyframe_poses VALUES ('sitting', 3);
INSERT INTO keyframe_poses VALUES ('standing', 3);
INSERT INTO ocr_fts(rowid, text) VALUES (2, 'lu lut o hue');
INSERT INTO speech_fts(rowid, text) VALUES (1, 'hello world');
INSERT INTO sqlite_sequence VALUES ('videos', 2);
INSERT INTO sqlite_sequence VALUES ('vector_removals', 0);
INSERT INTO sqlite_sequence VALUES ('keyframes', 7);
CREATE INDEX ix_videos_stem ON videos (stem);
CREATE UNIQUE INDEX ix_videos_path ON videos (path);
CREATE INDEX ix_videos_status ON videos (status);
CREATE INDEX ix_keyframes_person_count ON keyframes (person_count);
CREATE INDEX ix_keyframes_video_id ON keyframes (video_id);
CREATE INDEX ix_speech_video_start ON speech_segments (video_id, start);
CREATE INDEX ix_ocr_boxes_keyframe_id ON ocr_boxes (keyframe_id);
CREATE INDEX ix_persons_keyframe_id ON persons (keyframe_id);
CREATE INDEX ix_keyframe_poses_keyframe_id ON keyframe_poses (keyframe_id);
CREATE TRIGGER keyframe_deleted AFTER DELETE ON keyframes BEGIN
    DELETE FROM ocr_fts WHERE rowid = old.id;
    INSERT INTO vector_removals(keyframe_id) VALUES (old.id);
END;
CREATE TRIGGER speech_deleted AFTER DELETE ON speech_segments BEGIN
    DELETE FROM speech_fts WHERE rowid = old.id;
END;
