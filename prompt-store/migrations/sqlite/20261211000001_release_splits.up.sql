-- Release splits (issue 18, item 3): a label may point at several versions with
-- weights, e.g. {"4": 90, "5": 10} (a JSON object version → weight); its `version`
-- stays the primary arm. The split is recorded on each label move (NULL: the move
-- pointed the label at one version, which ends a split), and on each run picked from
-- one ({"label": …, "weights": {…}}). NULL everywhere for rows made before.
ALTER TABLE labels ADD COLUMN split TEXT;
ALTER TABLE label_moves ADD COLUMN split TEXT;
ALTER TABLE runs ADD COLUMN split TEXT;
