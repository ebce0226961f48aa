//! A small element tree for the XML answers of cloud APIs (EC2's Query protocol), read
//! with quick-xml: each element's local name (namespaces dropped, as the AWS SDKs
//! match them), its character data, and its child elements in order.
//!
//! Bounded: the tree is at most [`MAX_DEPTH`] elements deep (deeper answers are refused
//! rather than recursed into) and holds at most [`MAX_ELEMENTS`] elements (about 100
//! bytes each: a body of empty elements would otherwise take twenty times its size);
//! its text follows the body's, which the request's body limit bounds. No DTD is read: quick-xml expands only the five predefined
//! entities and character references, so no entity can expand.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// The deepest element nesting accepted (EC2's answers nest about ten deep).
pub(crate) const MAX_DEPTH: usize = 64;

/// The most elements a document may hold (a page of 1000 EC2 instances with many
/// interfaces and volumes is a few hundred thousand).
pub(crate) const MAX_ELEMENTS: usize = 1_000_000;

/// One element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// Its local name (`item`, `instanceId`).
    pub(crate) name: String,
    /// Its character data (entities decoded; the text of nested elements is theirs).
    pub(crate) text: String,
    /// Its child elements, in document order.
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child named `name`, if there is one (an empty element
    /// gives `Some("")`, as the AWS SDKs set a present field).
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The `item` children of the child named `name` (a Query-protocol list).
    pub(crate) fn items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Element> + 'a {
        self.child(name)
            .into_iter()
            .flat_map(|l| l.children.iter().filter(|c| c.name == "item"))
    }

    /// The element at the end of a path of child names.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, n| e.child(n))
    }
}

fn syntax(e: impl std::fmt::Display) -> String {
    format!("XML syntax error: {e}")
}

/// Reads a whole document into its root element.
pub(crate) fn parse(body: &[u8]) -> Result<Element, String> {
    let mut r = Reader::from_reader(body);
    r.config_mut().check_end_names = true;
    // Open elements, innermost last; the finished root lands in `root`.
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let ev = r.read_event().map_err(syntax)?;
        let (start, end) = match &ev {
            Event::Start(_) => (true, false),
            Event::Empty(_) => (true, true),
            Event::End(_) => (false, true),
            Event::Text(t) => {
                let s = t.unescape().map_err(syntax)?;
                match open.last_mut() {
                    Some(e) => e.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(syntax("character data outside the root element")),
                }
                continue;
            }
            Event::CData(c) => {
                if let Some(e) = open.last_mut() {
                    e.text.push_str(&String::from_utf8_lossy(c));
                }
                continue;
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(syntax("a document type declaration is not accepted")),
            _ => continue,
        };
        if start {
            let (Event::Start(s) | Event::Empty(s)) = &ev else {
                unreachable!("start is only set for Start and Empty events")
            };
            if root.is_some() && open.is_empty() {
                return Err(syntax("a second root element"));
            }
            if open.len() >= MAX_DEPTH {
                return Err(syntax(format!("elements nested deeper than {MAX_DEPTH}")));
            }
            elements += 1;
            if elements > MAX_ELEMENTS {
                return Err(syntax(format!("more than {MAX_ELEMENTS} elements")));
            }
            open.push(Element {
                name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                ..Element::default()
            });
        }
        if end {
            // quick-xml checks that an end tag matches the open element.
            let Some(done) = open.pop() else {
                return Err(syntax("an end tag with no element open"));
            };
            match open.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root = Some(done),
            }
        }
    }
    if let Some(e) = open.last() {
        return Err(syntax(format!("unexpected EOF in element {}", e.name)));
    }
    root.ok_or_else(|| syntax("no root element"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_becomes_its_tree() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<R xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><list><item><a>x &amp; y</a><b/></item><item><a><![CDATA[<z>]]></a></item></list><t>1</t></R>"#;
        let r = parse(doc).expect("valid");
        assert_eq!(r.name, "R");
        let items: Vec<_> = r.items("list").collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text_of("a"), Some("x & y"));
        assert_eq!(items[0].text_of("b"), Some(""), "present but empty");
        assert_eq!(items[0].text_of("c"), None, "absent");
        assert_eq!(items[1].text_of("a"), Some("<z>"));
        assert_eq!(r.text_of("t"), Some("1"));
        assert_eq!(
            r.at(&["list", "item", "a"]).map(|e| e.text.as_str()),
            Some("x & y")
        );
    }

    #[test]
    fn broken_and_hostile_documents_are_refused() {
        for (doc, want) in [
            (&b"<a><b></a>"[..], "XML syntax error"),
            (b"<a><b>", "unexpected EOF in element b"),
            (b"", "no root element"),
            (b"<a/><b/>", "a second root element"),
            (b"text<a/>", "character data outside"),
            (b"<a>&bogus;</a>", "XML syntax error"),
            (
                b"<!DOCTYPE a [<!ENTITY x \"xx\">]><a>&x;</a>",
                "document type declaration",
            ),
        ] {
            let e = parse(doc).expect_err("refused");
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(doc));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        let e = parse(deep.as_bytes()).expect_err("too deep");
        assert!(e.contains("nested deeper than 64"), "{e}");
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let many = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS));
        let e = parse(many.as_bytes()).expect_err("too many");
        assert!(e.contains("more than 1000000 elements"), "{e}");
        let most = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS - 1));
        assert_eq!(
            parse(most.as_bytes()).map(|r| r.children.len()),
            Ok(MAX_ELEMENTS - 1)
        );
    }
}
