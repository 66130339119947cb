"""PLLaVA-style LLaVA (issue 16, work in progress): the class equals a plain reference forward of the same math."""

import torch
import torch.nn.functional as F

from mapflow_utils import pllava


def _tiny(num_frames=4, pool=(2, 2, 2)):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)  # 4×4 patches per frame
    text = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=64, max_position_embeddings=256)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=63, vision_feature_layer=-2,
                      vision_feature_select_strategy="default", projector_hidden_act="gelu")
    cfg.pooling_shape, cfg.num_frames, cfg.use_pooling = list(pool), num_frames, True
    torch.manual_seed(0)
    return pllava.PllavaForConditionalGeneration(cfg).eval(), cfg


def test_pllava_pools_after_the_projector_and_matches_a_reference_forward():
    model, cfg = _tiny()
    t, h, w = cfg.pooling_shape
    ids = torch.tensor([[1, 5, 6] + [cfg.image_token_index] * (t * h * w) + [7, 8, 9]])
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        got = model(input_ids=ids, pixel_values=pixels).logits
        # reference: CLIP per frame (layer -2, CLS dropped) -> projector per patch -> 3-D average pool -> merge
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]  # [T, 16, 32]
        proj = model.model.multi_modal_projector(hs)  # [T, 16, 48]
        grid = proj.reshape(cfg.num_frames, 4, 4, -1).permute(3, 0, 1, 2)[None]
        pooled = F.avg_pool3d(grid, (2, 2, 2))[0].permute(1, 2, 3, 0).reshape(-1, proj.shape[-1])  # exact halves
        emb = model.get_input_embeddings()(ids)
        emb[0, 3:3 + t * h * w] = pooled
        want = model.lm_head(model.model.language_model(inputs_embeds=emb).last_hidden_state)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pooling_is_not_llava_next_videos_order():
    """Pooling after the projector differs from pooling before it (LlavaNextVideo's order): the GELU between."""
    model, cfg = _tiny()
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        after = pllava.pool_video(model.model.multi_modal_projector(hs), tuple(cfg.pooling_shape))
        before = model.model.multi_modal_projector(pllava.pool_video(hs, tuple(cfg.pooling_shape)))
    assert not torch.allclose(after, before, atol=1e-4)


def test_legacy_checkpoint_keys_load(tmp_path):
    """The paper's checkpoints use the pre-4.47 LLaVA layout (``language_model.model.*``, ``language_model.lm_head``,
    ``vision_tower.*``, ``multi_modal_projector.linear_1/2``): written that way, they load with the same outputs."""
    import json

    from safetensors.torch import save_file

    model, cfg = _tiny()
    legacy = {}
    for k, v in model.state_dict().items():
        k = (k.replace("model.language_model.", "language_model.model.").replace("lm_head.", "language_model.lm_head.")
             .replace("model.vision_tower.", "vision_tower.").replace("model.multi_modal_projector.", "multi_modal_projector."))
        legacy[k] = v.contiguous()
    assert any(k.startswith("language_model.model.") for k in legacy)
    save_file(legacy, tmp_path / "model.safetensors")
    cfg.save_pretrained(tmp_path)
    loaded = pllava.PllavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert json.loads((tmp_path / "config.json").read_text())["pooling_shape"] == [2, 2, 2]
    t, h, w = cfg.pooling_shape
    ids = torch.tensor([[1, 5] + [cfg.image_token_index] * (t * h * w) + [7]])
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, pixel_values=pixels).logits,
                                   model(input_ids=ids, pixel_values=pixels).logits)


def test_current_layout_round_trips(tmp_path):
    model, cfg = _tiny()
    model.save_pretrained(tmp_path)
    loaded = pllava.PllavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    for (k, a), (k2, b) in zip(sorted(model.state_dict().items()), sorted(loaded.state_dict().items())):
        assert k == k2 and torch.equal(a, b), k
