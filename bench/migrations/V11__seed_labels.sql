INSERT INTO labels (name, color) VALUES
    ('bug', '#d73a4a'),
    ('feature', '#a2eeef'),
    ('chore', '#cfd3d7'),
    ('docs', '#0075ca'),
    ('security', '#b60205');
