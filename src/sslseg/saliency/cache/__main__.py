"""``python -m sslseg.saliency.cache``: fill the saliency cache of one store."""

from sslseg.saliency.cache.command import main

raise SystemExit(main())
