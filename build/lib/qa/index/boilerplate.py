"""Page furniture: the comment forms, share bars, cookie notices and navigation that saved web
pages carry along, recognised at ingest so they are never indexed or quoted as answers.

Two rules, both on whole blocks (paragraphs and headings), in any of the languages listed:

* A short block that is mostly one of the known furniture phrases ("Leave a Reply", "Your email
  address will not be published", "发表回复", "コメントを残す"...) is furniture.
* Once a comment section opens near the end of a document (a furniture block in its last
  quarter), every short block after it is furniture too: the form's labels, buttons and
  "required fields" notes in whatever wording the site used.

A long block that merely mentions cookies or comments is body text and stays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Lower-cased phrases, matched as substrings of a lower-cased, whitespace-collapsed block.
PHRASES = tuple(p.strip() for p in """
leave a reply
leave a comment
post a comment
post comment
submit comment
add a comment
cancel reply
comments are closed
your email address will not be published
your e-mail address will not be published
required fields are marked
save my name, email, and website
notify me of new posts
notify me of follow-up comments
share this article
share this post
share this:
share on facebook
share on twitter
share on linkedin
click to share
like this:
related posts
related articles
you may also like
previous post
next post
posted in
tagged with
skip to content
skip to main content
back to top
all rights reserved
we use cookies
this website uses cookies
this site uses cookies
accept all cookies
cookie settings
cookie policy
privacy policy
terms of use
subscribe to our newsletter
sign up for our newsletter
read more
评论
发表评论
发表回复
取消回复
您的邮箱地址不会被公开
您的电子邮箱地址不会被公开
电子邮件地址不会被公开
必填项已用
必填项已标记
分享到
上一篇
下一篇
相关文章
版权所有
コメントを残す
コメントをどうぞ
メールアドレスが公開されることはありません
は必須項目です
シェアする
関連記事
前の記事
次の記事
schreibe einen kommentar
hinterlasse einen kommentar
deine e-mail-adresse wird nicht veröffentlicht
ihre e-mail-adresse wird nicht veröffentlicht
erforderliche felder sind mit
kommentar abschicken
teilen auf
ähnliche beiträge
laisser un commentaire
laisser une réponse
votre adresse e-mail ne sera pas publiée
votre adresse de messagerie ne sera pas publiée
les champs obligatoires sont indiqués
partager sur
articles similaires
deja una respuesta
deja un comentario
tu dirección de correo electrónico no será publicada
los campos obligatorios están marcados
compartir en
entradas relacionadas
lascia un commento
lascia un commento
il tuo indirizzo email non sarà pubblicato
i campi obbligatori sono contrassegnati
deixe um comentário
deixe uma resposta
o seu endereço de email não será publicado
оставьте комментарий
оставить комментарий
ваш адрес email не будет опубликован
обязательные поля помечены
댓글 남기기
이메일 주소는 공개되지 않습니다
""".strip().splitlines())

# A block longer than this is prose, whatever it mentions.
MAX_FURNITURE_CHARS = 200
# Once a comment section has opened, short blocks after it are its form.
MAX_TRAILING_CHARS = 300
_SPACES = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def is_furniture(text: str) -> bool:
    """Whether one block is a piece of page furniture (short and made of a known phrase)."""
    low = _normal(text)
    if not low or len(low) > MAX_FURNITURE_CHARS:
        return False
    matched = [p for p in PHRASES if p in low]
    if not matched:
        return False
    # Most of the block must be the phrase(s): "Read more about the budget below" is prose.
    covered = sum(len(p) for p in set(matched))
    return covered >= 0.4 * len(low.rstrip(" .:!。：")) or len(low) <= 24


def furniture_blocks(texts: Sequence[str]) -> set[int]:
    """Indexes of the blocks of one document that are page furniture."""
    out = {i for i, t in enumerate(texts) if is_furniture(t)}
    n = len(texts)
    tail_start = next((i for i in sorted(out) if i >= n - max(2, n // 4)), None)
    if tail_start is not None:
        for i in range(tail_start + 1, n):
            if len(_normal(texts[i])) > MAX_TRAILING_CHARS:
                break
            out.add(i)
    return out
