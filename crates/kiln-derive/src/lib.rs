//! `#[derive(Module)]` for kiln-nn, re-exported as `kiln_nn::Module` (the derive and the trait
//! share the name, as serde's `Serialize` does). Use it through kiln-nn; the generated code
//! names `::kiln_nn` paths.
//!
//! The derive walks the struct's fields in declaration order and reports each one through
//! `kiln_nn::module::ModuleField`, which is implemented for parameters (`Var`), buffers
//! (`Buffer`), every `Module`, `Option`/`Vec`/arrays of those, and plain configuration values
//! (integers, floats, `bool`, `String`, ...). A field of any other type is a compile error rather
//! than a silently missing parameter; `#[module(skip)]` opts it out.
//!
//! Field attributes:
//! - `#[module(skip)]`: not state (a random generator, a cached tensor, ...).
//! - `#[module(rename = "name")]`: the name in `named_parameters()` / `state_dict()`.
//! - `#[module(flatten)]`: report the field's contents without the field's own name, so a
//!   `Vec` of layers is named `0.weight`, `1.weight` like `nn.Sequential`.
//! - `#[module(training)]`: an `AtomicBool` holding the module's own train/eval flag.
//!
//! `forward` stays hand-written as an inherent method `fn forward(&self, x: &Tensor) ->
//! kiln_nn::Result<Tensor>`; the generated `Module::forward` calls it, and forgetting it is a
//! compile error (not an infinite recursion).

#![warn(missing_docs)]
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitStr};

/// Implements `kiln_nn::Module` for a struct from its fields; see the crate documentation.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// What the attributes on one field ask for.
#[derive(Default)]
struct FieldOpts {
    skip: bool,
    flatten: bool,
    training: bool,
    rename: Option<String>,
}

fn field_opts(attrs: &[syn::Attribute]) -> syn::Result<FieldOpts> {
    let mut o = FieldOpts::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("module")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                o.skip = true;
            } else if m.path.is_ident("flatten") {
                o.flatten = true;
            } else if m.path.is_ident("training") {
                o.training = true;
            } else if m.path.is_ident("rename") {
                let s: LitStr = m.value()?.parse()?;
                if s.value().is_empty() || s.value().contains('.') {
                    return Err(syn::Error::new(s.span(), "a parameter name must be non-empty and contain no `.`"));
                }
                o.rename = Some(s.value());
            } else {
                return Err(m.error("expected `skip`, `flatten`, `training` or `rename = \"...\"`"));
            }
            Ok(())
        })?;
    }
    let exclusive = [o.skip, o.flatten, o.training, o.rename.is_some()].iter().filter(|b| **b).count();
    if exclusive > 1 {
        let span = attrs.first().map_or(Span::call_site(), |a| a.span());
        return Err(syn::Error::new(
            span,
            "`skip`, `flatten`, `training` and `rename` cannot be combined on one field",
        ));
    }
    Ok(o)
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Module)] supports structs only (a module's state is its fields)",
        ));
    };
    let fields: Vec<&syn::Field> = match &data.fields {
        Fields::Named(f) => f.named.iter().collect(),
        Fields::Unnamed(f) => f.unnamed.iter().collect(),
        Fields::Unit => Vec::new(),
    };
    let p = quote!(::kiln_nn::__private);
    let mut params = Vec::new();
    let mut buffers = Vec::new();
    let mut set_training = Vec::new();
    let mut is_training = Vec::new();
    let mut flag: Option<TokenStream2> = None;
    for (i, f) in fields.iter().enumerate() {
        let opts = field_opts(&f.attrs)?;
        if opts.skip {
            continue;
        }
        // `self.name` or `self.0`; the state-dict name is the field's name unless renamed.
        let (access, default_name) = match &f.ident {
            Some(id) => (quote!(self.#id), id.to_string()),
            None => {
                let idx = syn::Index::from(i);
                (quote!(self.#idx), i.to_string())
            }
        };
        let ty = &f.ty;
        if opts.training {
            if flag.is_some() {
                return Err(syn::Error::new(f.span(), "only one field can be `#[module(training)]`"));
            }
            // The type check names the field's span, so a wrong type points at the field.
            flag = Some(quote_spanned! {ty.span()=> {
                let flag: &::std::sync::atomic::AtomicBool = &#access;
                flag
            }});
            continue;
        }
        let name = if opts.flatten {
            quote!(::std::string::String::from(prefix))
        } else {
            let n = opts.rename.unwrap_or(default_name);
            quote!(#p::join(prefix, #n))
        };
        // `quote_spanned!` puts a missing `ModuleField` impl on the field's type.
        params.push(quote_spanned! {ty.span()=> #p::ModuleField::visit_field_parameters(&#access, &#name, f); });
        buffers.push(quote_spanned! {ty.span()=> #p::ModuleField::visit_field_buffers(&#access, &#name, f); });
        set_training.push(quote_spanned! {ty.span()=> #p::ModuleField::set_field_training(&#access, on); });
        is_training.push(quote_spanned! {ty.span()=> && #p::ModuleField::field_is_training(&#access) });
    }
    let (set_flag, is_training_body) = match &flag {
        Some(fl) => (
            quote!(#fl.store(on, ::std::sync::atomic::Ordering::Relaxed);),
            quote!(#fl.load(::std::sync::atomic::Ordering::Relaxed)),
        ),
        // Without its own flag a module is in training mode when all its children are (as
        // `Sequential` says), and a module without mode-dependent children always is.
        None => (quote!(), quote!(true #(#is_training)*)),
    };
    let ident = &input.ident;
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_g ::kiln_nn::Module for #ident #ty_g #where_c {
            fn forward(&self, x: &#p::Tensor) -> ::kiln_nn::Result<#p::Tensor> {
                // Path lookup prefers an inherent `forward`. Without one, this trait's blanket
                // `forward` also matches (ambiguous, or the wrong signature), so a missing
                // inherent method is a compile error instead of `Module::forward` calling itself.
                #[allow(unused_imports)]
                use #p::DeriveModuleNeedsAnInherentForwardMethod as _;
                Self::forward(self, x)
            }
            fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &#p::Var)) {
                let _ = (&prefix, &f);
                #(#params)*
            }
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &#p::Buffer)) {
                let _ = (&prefix, &f);
                #(#buffers)*
            }
            fn set_training(&self, on: bool) {
                let _ = on;
                #set_flag
                #(#set_training)*
            }
            fn is_training(&self) -> bool {
                #is_training_body
            }
        }
    })
}
